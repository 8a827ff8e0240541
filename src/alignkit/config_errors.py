"""What to tell the user when a configuration value is wrong.

pydantic reports a problem at a *location* such as ``("loss", "ipo", "beta")``.
This module walks the schema along that location (through nested sections,
lists, mappings and discriminated unions) to recover the dotted key the user
wrote (``loss.beta``), the section holding it and the field's type, bounds and
choices, and turns each problem into one line that names the key, the value
given, where it was set and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from alignkit.config import Shape, bounds_label, choices_of, number_text, shape_of, type_label
from alignkit.overrides import format_value


@dataclass
class _Location:
    """A pydantic error location mapped back onto the schema."""

    key: str = ""
    parent: type[BaseModel] | None = None
    parent_key: str = ""
    variant: tuple[str, str, str] | None = None  # (union key, discriminator, tag)
    siblings: dict[str, type[BaseModel]] | None = None  # every variant of that union
    field: FieldInfo | None = None
    shape: Shape | None = None
    path: list[str | int] = dataclasses.field(default_factory=list)  # keys as in the data
    union: Shape | None = None  # set when the location went into a plain union's member


def _is_plain_union(shape: Shape | None) -> bool:
    return shape is not None and shape.kind == "leaf" and \
        get_origin(shape.annotation) in (Union, types.UnionType)


def _join(key: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{key}[{part}]"
    return f"{key}.{part}" if key else part


def _locate(schema: type[BaseModel], loc: tuple[str | int, ...]) -> _Location:
    where = _Location(shape=Shape("section", schema, section=schema))
    entered_variant, siblings = None, None
    for part in loc:
        shape = where.shape
        if where.union is not None:
            continue
        if _is_plain_union(shape) and isinstance(part, str):
            # pydantic names the member it tried (``list[str]``); report the whole union.
            where.union = shape
            continue
        if shape and shape.kind == "union" and part in shape.variants:
            # pydantic puts the tag in the location; the user never wrote it.
            entered_variant, siblings = (where.key, shape.discriminator, part), shape.variants
            where.shape = Shape("section", shape.variants[part], section=shape.variants[part])
            continue
        if shape and shape.kind == "section":
            where.parent, where.parent_key = shape.section, where.key
            where.variant, where.siblings = entered_variant, siblings
            where.field = shape.section.model_fields.get(str(part))
            where.shape = shape_of(where.field.annotation, where.field.discriminator) \
                if where.field else None
        else:
            where.shape = shape.item if shape and shape.kind in ("list", "map") else None
        entered_variant = siblings = None
        where.key = _join(where.key, part)
        where.path.append(part)
    return where


def _dotted_keys(schema: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every dotted key of ``schema``, through sections and all union variants."""
    for name, field in schema.model_fields.items():
        yield prefix + name
        shape = shape_of(field.annotation, field.discriminator)
        nested = [shape.section] if shape.kind == "section" else list(
            dict.fromkeys((shape.variants or {}).values()))
        for section in nested:
            yield from _dotted_keys(section, f"{prefix}{name}.")


def _did_you_mean(word: str, candidates: Sequence[str], prefix: str = "") -> str:
    match = difflib.get_close_matches(word, [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean '{prefix}{match[0]}'?)" if match else ""


def _unknown_key(schema: type[BaseModel], where: _Location) -> str:
    name = where.key.rsplit(".", 1)[-1]
    valid = list(where.parent.model_fields)
    prefix = f"{where.parent_key}." if where.parent_key else ""
    if where.variant:
        union_key, disc, tag = where.variant
        kind = f"{union_key.rsplit('.', 1)[-1]} {disc}"  # e.g. "loss type"
        owner = f"{kind} '{tag}'"
        reason = f"'{name}' is not an option of {owner}"
        valid = [disc, *(k for k in valid if k != disc)]  # the discriminator reads best first
    else:
        owner = f"section '{where.parent_key}'" if where.parent_key else "the top level"
        reason = "unknown key"
    hint = _did_you_mean(name, valid, prefix)
    if not hint:
        elsewhere = [k for k in dict.fromkeys(_dotted_keys(schema))
                     if k.endswith("." + name) and k != where.key]
        hint = f" (did you mean '{elsewhere[0]}'?)" if elsewhere else ""
    if where.variant:
        others = [f"'{t}'" for t, v in where.siblings.items() if name in v.model_fields]
        hint += f" ('{name}' belongs to {kind} {', '.join(others)})" if others else ""
    return f"{reason}{hint}; {owner} takes: {', '.join(valid)}"


_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}


def _reason(schema: type[BaseModel], error: dict[str, Any], where: _Location) -> str:
    """Why the value at ``where`` is wrong, and what is allowed (no key, no value)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    field_required = where.field is not None and where.field.is_required()
    if kind == "extra_forbidden":
        return _unknown_key(schema, where)
    if value is None and field_required:
        return "is required and has no default; got null"
    if kind in _BOUNDS:
        attr, symbol = _BOUNDS[kind]
        violated = f"{symbol} {number_text(ctx[attr])}"
        allowed = bounds_label(where.field) if where.field else ""
        return f"must be {violated}" + (f" (allowed: {allowed})" if "," in allowed else "")
    if kind == "multiple_of":
        return f"must be a multiple of {ctx['multiple_of']}"
    if kind in ("too_short", "too_long"):
        unit = "characters" if isinstance(value, str) else "items"
        bound = ctx.get("min_length", ctx.get("max_length"))
        least = "at least" if kind == "too_short" else "at most"
        return f"must have {least} {bound} {unit}"
    if kind == "finite_number":
        return "must be a finite number (not .nan or .inf)"
    if kind in ("literal_error", "enum"):
        choices = choices_of(where.shape) if where.shape else None
        allowed = ", ".join(format_value(c) for c in choices) if choices else ctx.get("expected")
        return f"must be one of {allowed}" + _did_you_mean(str(value), choices or ())
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        keys = ", ".join(where.shape.section.model_fields) if where.shape and \
            where.shape.section else ""
        return "must be a section (a mapping of keys to values" + (
            f": {keys})" if keys else ")")
    if kind in ("value_error", "assertion_error"):
        return str(error["msg"]).split(", ", 1)[-1]
    expected = f"expected {type_label(where.shape)}" if where.shape else error["msg"]
    if kind == "string_type" and isinstance(value, int | float | bool):
        expected += " (quote it to make it text, e.g. '" + str(value) + "')"
    return expected


def _origin(key: str, origins: dict[str, str]) -> str:
    """Where ``key`` (or the closest section above it) was set, e.g. `` (sft.yaml:4)``."""
    candidate = re.sub(r"\[\d+\].*$", "", key)
    inside = [where for k, where in origins.items() if k.startswith(candidate + ".")]
    while candidate:
        if candidate in origins:
            return f" ({origins[candidate]})"
        candidate = candidate.rpartition(".")[0]
    # A section built from keys set one by one: point at the first of them.
    return f" ({inside[0]})" if inside else ""


def _missing(key: str, field: FieldInfo | None, shape: Shape | None) -> list[str]:
    """A missing key; for a missing section, each of its required keys."""
    if shape is not None and shape.kind == "section":
        inner = [_missing(f"{key}.{name}", f, shape_of(f.annotation, f.discriminator))
                 for name, f in shape.section.model_fields.items() if f.is_required()]
        if inner:
            return [line for lines in inner for line in lines]
    about = f" ({field.description})" if field is not None and field.description else ""
    return [f"{key}: is required and has no default{about}"]


def _union_problem(where: _Location, value: Any, origins: dict[str, str]) -> str:
    members = [shape_of(a) for a in get_args(where.union.annotation)]
    choices = [c for m in members for c in (choices_of(m) or ())]
    return (f"{where.key} = {format_value(value)}{_origin(where.key, origins)}: expected "
            f"{type_label(where.union)}" + _did_you_mean(str(value), choices))


def _tag_problem(error: dict[str, Any], where: _Location, origins: dict[str, str]) -> str:
    shape, value = where.shape, error.get("input")
    disc = shape.discriminator if shape and shape.kind == "union" else "type"
    tags = list(shape.variants) if shape and shape.variants else []
    key, allowed = _join(where.key, disc), ", ".join(f"'{t}'" for t in tags)
    if error["type"] == "union_tag_not_found" or not isinstance(value, dict):
        return f"{key}: is required to choose the kind of '{where.key}'; one of {allowed}"
    given = value.get(disc)
    owner = f"{where.key.rsplit('.', 1)[-1]} {disc}"
    return (f"{key} = {format_value(given)}{_origin(key, origins)}: unknown {owner}; "
            f"allowed: {allowed}" + _did_you_mean(str(given), tags))


def _problems(schema: type[BaseModel], error: dict[str, Any], origins: dict[str, str],
              data: Any) -> list[str]:
    """The lines one pydantic error becomes (a missing section may give several)."""
    loc, kind = tuple(error["loc"]), error["type"]
    where = _locate(schema, loc)
    if where.union is not None:
        return [_union_problem(where, _lookup(data, where.path, error.get("input")), origins)]
    if kind == "missing" and loc and isinstance(loc[-1], int):
        # A fixed-length tuple given too few items: report the list, not the hole.
        outer = _locate(schema, loc[:-1])
        label = type_label(outer.shape) if outer.shape else "more items"
        return [f"{outer.key} = {format_value(error.get('input'))}"
                f"{_origin(outer.key, origins)}: expected {label}"]
    if kind == "missing":
        return _missing(where.key, where.field, where.shape)
    if not loc:  # a check across sections: its message names the keys
        return [_reason(schema, error, where)]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return [_tag_problem(error, where, origins)]
    return [f"{where.key} = {format_value(error.get('input'))}{_origin(where.key, origins)}: "
            + _reason(schema, error, where)]


def _lookup(data: Any, path: list[str | int], fallback: Any) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return fallback
    return data


def explain_validation_error(schema: type[BaseModel], exc: ValidationError,
                             origins: dict[str, str] | None = None, data: Any = None) -> str:
    """All problems of one validation, one line each, headed by how many there are.

    Args:
        schema: the model that was validated.
        exc: pydantic's error for that validation.
        origins: dotted key -> where it was set (``"sft.yaml:4"``, ``"override x=1"``).
        data: the validated input, to show a value pydantic reports only in part.
    """
    problems = list(dict.fromkeys(
        line for error in exc.errors() for line in _problems(schema, error, origins or {}, data)))
    count = f" ({len(problems)} problems)" if len(problems) > 1 else ""
    return f"invalid configuration{count}:\n" + "\n".join(f"  - {p}" for p in problems)
