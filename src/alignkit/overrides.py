"""Reading configuration values: YAML files and ``KEY=VALUE`` overrides.

Values are YAML, read with PyYAML's safe loader and three changes that make
configuration files say what they appear to say:

* ``1e-5`` is a float. YAML 1.1 wants a dot and a signed exponent
  (``1.0e-5``), so a plain loader reads ``1e-5`` as the *string* "1e-5".
* Only ``true``/``false`` (any case) are booleans; YAML 1.1 also turns ``yes``,
  ``no``, ``on`` and ``off`` into booleans, which silently breaks values such as
  ``language: no``.
* Dates stay text (``2024-01-01`` is not turned into a ``datetime``), and a key
  written twice in one mapping is an error instead of "the last one wins".

Besides the values, reading a file records where each dotted key was set
(``sft.yaml:12``) so that validation errors can point at the line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from alignkit.errors import ConfigError

_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_DROPPED_TAGS = {_BOOL_TAG, "tag:yaml.org,2002:timestamp"}
# Scientific notation without a dot or without an exponent sign: 1e-5, 3E4, .5e3, 2.e+1.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_STRICT_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL_SPELLINGS = {"null", "Null", "NULL", "~"}
YAML_BLANKS = " \t\r\n"
"""What YAML itself treats as blank around a scalar (not every Unicode space)."""


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the float, boolean and date changes described above."""


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(_FLOAT_TAG, _EXPONENT_FLOAT, list("-+0123456789."))
ConfigLoader.add_implicit_resolver(_BOOL_TAG, _STRICT_BOOL, list("tTfF"))


class ConfigDumper(yaml.SafeDumper):
    """Safe dumper that quotes every string :class:`ConfigLoader` would read as a number."""


ConfigDumper.add_implicit_resolver(_FLOAT_TAG, _EXPONENT_FLOAT, list("-+0123456789."))


def _dump(data: Any, **options: Any) -> str:
    text = yaml.dump(data, Dumper=ConfigDumper, sort_keys=False, allow_unicode=True, **options)
    if not text.isascii() and yaml.load(text, Loader=ConfigLoader) != data:
        # PyYAML writes a few characters (U+0085, U+2028...) raw and reads them back as
        # line breaks; escaping everything outside ASCII keeps the value.
        text = yaml.dump(data, Dumper=ConfigDumper, sort_keys=False, allow_unicode=False,
                         **options)
    return text


def dump_yaml(data: Any) -> str:
    """``data`` as block-style YAML, keys in the given order, readable by :class:`ConfigLoader`."""
    return _dump(data, default_flow_style=False)


def flow_yaml(value: Any) -> str:
    """``value`` as one line of YAML flow style (``0.1``, ``[q_proj, v_proj]``, ``null``)."""
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)  # 1e-05 rather than PyYAML's 1.0e-05; ConfigLoader reads both
    # Only YAML's own blanks are stripped: str.strip() would also take a no-break or
    # em space, which YAML keeps as text (a value of just "\xa0" would vanish).
    text = _dump(value, default_flow_style=True, width=1_000_000).strip(YAML_BLANKS)
    return text.removesuffix("...").strip(YAML_BLANKS)


def format_value(value: Any, limit: int = 60) -> str:
    """One line showing ``value`` as it could be typed in an override; strings in single quotes."""
    text = "'" + value.replace("'", "''") + "'" if isinstance(value, str) else flow_yaml(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_yaml(text: str, source: str) -> tuple[Any, dict[str, str]]:
    """Parse one YAML document.

    Args:
        text: the document.
        source: the name used in messages and origins (a file name).

    Returns:
        ``(data, origins)``: the parsed value, and for every dotted key of every
        nested mapping the place it was set, as ``"SOURCE:LINE"``.

    Raises:
        ConfigError: a syntax error (with line and column), several documents,
            a key that is not a name, or a key given twice in one mapping.
    """
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        origins: dict[str, str] = {}
        if node is not None:
            _record_origins(node, "", source, origins)
        return (loader.construct_document(node) if node is not None else None), origins
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source} line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and not exc.context.startswith("while"):
            problem = f"{exc.context}, {exc.problem}"  # e.g. "expected a single document..."
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _record_origins(node: yaml.Node, prefix: str, source: str, origins: dict[str, str]) -> None:
    """Walk mapping nodes, noting each key's line and refusing non-name or repeated keys."""
    if not isinstance(node, yaml.MappingNode):
        return
    first_line: dict[str, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
            raise ConfigError(f"{source} line {line}: key {shown!r} is not a name; "
                              "keys must be text")
        name = key_node.value
        if name in first_line:
            raise ConfigError(f"{source} line {line}: key '{prefix}{name}' is given twice "
                              f"(first on line {first_line[name]})")
        first_line[name] = line
        origins[prefix + name] = f"{source}:{line}"
        _record_origins(value_node, f"{prefix}{name}.", source, origins)


def read_yaml_file(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Read a configuration file whose top level is a mapping (an empty file is ``{}``).

    Returns:
        ``(data, origins)`` as :func:`parse_yaml`.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML, or
            its top level is not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    data, origins = parse_yaml(text, str(path))
    if data is None:
        return {}, origins
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values "
                          f"(like 'optim:'), found {_kind(data)}")
    return data, origins


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into ``(["a", "b", "c"], value)``, the value parsed as YAML.

    A value that YAML reads as a comment (``color=#ff0000``) is kept as text.

    Raises:
        ConfigError: no ``=``, an empty name between dots, an empty value, or a
            value that is not valid YAML.
    """
    key, sep, raw = text.partition("=")
    if not sep:
        hint = (f"; to read a config file use --config {text}"
                if text.endswith((".yaml", ".yml")) else "")
        raise ConfigError(f"override {text!r} has no '=': overrides are KEY=VALUE, "
                          f"e.g. optim.lr=1e-5{hint}")
    parts = key.strip().split(".")
    if any(not part or part != part.strip() for part in parts):
        raise ConfigError(f"override {text!r}: {key.strip()!r} is not a dotted key "
                          "(names separated by single dots, e.g. optim.lr)")
    if not raw.strip(YAML_BLANKS):
        raise ConfigError(f"override {text!r} has an empty value; write {key}=null for "
                          f"no value, or \"{key}=''\" for empty text")
    value, _ = parse_yaml(raw, f"override {text!r}")
    if value is None and raw.strip(YAML_BLANKS) not in _NULL_SPELLINGS:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str],
                    origins: dict[str, str]) -> None:
    """Apply ``KEY=VALUE`` overrides to ``data`` in place, left to right (later ones win).

    A missing or null section on the way is created; a mapping value replaces
    the whole section it names (that is how a key is removed). ``origins`` is
    updated so every key set here is attributed to its override.

    Raises:
        ConfigError: a malformed override, or a path through a value that is
            not a section (``optim.lr.x=1`` when ``optim.lr`` is a number).
    """
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                through = ".".join(parts[: depth + 1])
                raise ConfigError(f"override {text!r}: '{through}' is {format_value(child)} "
                                  f"({_kind(child)}), not a section, so it has no key "
                                  f"'{parts[depth + 1]}'")
            node = child
        node[parts[-1]] = value
        dotted = ".".join(parts)
        for stale in [k for k in origins if k.startswith(dotted + ".")]:
            del origins[stale]
        origins[dotted] = f"override {text}"
        _attribute_nested(value, dotted + ".", f"override {text}", origins)


def _attribute_nested(value: Any, prefix: str, origin: str, origins: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            origins[f"{prefix}{key}"] = origin
            _attribute_nested(child, f"{prefix}{key}.", origin, origins)


def _kind(value: Any) -> str:
    """A user-facing name for the YAML kind of ``value``."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return "text" if isinstance(value, str) else f"a {type(value).__name__}"
