"""``${...}`` references in a pipeline's stages: ``${NAME}`` for an earlier stage, ``${seed}``."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.errors import ConfigError
from alignkit.overrides import format_value

REFERENCE = re.compile(r"\$\{([^}]*)\}")
SEED = "seed"


@dataclass(frozen=True)
class Scope:
    """What a stage may refer to: the seed, the stages above it, and (for messages) all names."""

    seed: int
    earlier: dict[str, str]
    names: list[str]


@dataclass(frozen=True)
class Where:
    """The stage being expanded: what it may refer to, and where its keys were set."""

    scope: Scope
    origins: dict[str, str]
    stage: str


def expand(value: Any, key: str, where: Where, uses: list[str]) -> Any:
    """``value`` with every ``${...}`` replaced; ``uses`` collects the stages referred to."""
    if isinstance(value, dict):
        return {k: expand(v, f"{key}.{k}" if key else k, where, uses) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, f"{key}[{i}]", where, uses) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    scope = where.scope
    whole = REFERENCE.fullmatch(value.strip())
    if whole and whole.group(1).strip() == SEED:
        return scope.seed  # a number, as seed fields want

    def replace(match: re.Match) -> str:
        ref = match.group(1).strip()
        if ref == SEED:
            return str(scope.seed)
        if ref in scope.earlier:
            uses.append(ref)
            return scope.earlier[ref]
        origin = f" ({where.origins[key]})" if key in where.origins else ""
        raise ConfigError(f"{key} = {format_value(value)}{origin}: "
                          + _bad_reference(ref, scope, where.stage))

    return REFERENCE.sub(replace, value)


def _bad_reference(ref: str, scope: Scope, stage: str) -> str:
    text = "${" + ref + "}"
    if ref == stage:
        return f"{text} refers to the stage itself; a stage can use only the stages above it"
    if ref in scope.names:
        return (f"{text} refers to stage '{ref}', which runs later; a stage can use only the "
                "stages above it")
    earlier = ", ".join(scope.earlier) or "none"
    return (f"{text} names no earlier stage{did_you_mean(ref, [*scope.earlier, SEED])}; "
            f"earlier stages: {earlier} (and ${{seed}})")


_YAML_LINE = re.compile(r" line (\d+), column \d+: invalid YAML")


def flow_reference_hint(path: Path, message: str) -> str:
    """A hint when a YAML error sits on a line where ``${...}`` is inside ``{...}`` or ``[...]``.

    There the braces of an unquoted reference end the value, so ``{path: ${sft}}``
    is a syntax error; quoted (``{path: "${sft}"}``) or in block style it is fine.
    """
    found = _YAML_LINE.search(message)
    if found is None:
        return ""
    try:
        line = path.read_text(encoding="utf-8").splitlines()[int(found.group(1)) - 1]
    except (OSError, UnicodeDecodeError, IndexError):
        return ""
    if "${" not in line or not ("{" in line.replace("${", "") or "[" in line):
        return ""
    return ("; inside {...} or [...] a value holding ${...} must be quoted, e.g. "
            '{path: "${sft}"}, or written in block style')


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest of ``candidates``, or ''."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""
