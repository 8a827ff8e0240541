"""Responses of varied quality, like the assistant text found in the wild.

Every response is written in one **style**:

============  ===========================================================
style         what it is
============  ===========================================================
good          the family's ideal answer (for a harmful request: a polite
              refusal with a safe alternative)
wrong         fluent but wrong (a wrong sum, a made-up fact; for a harmful
              request: help with the harm)
rude          the good answer wrapped in an insult (a rude refusal for a
              harmful request)
verbose       the good answer padded with filler, sometimes repeated
refusal       a polite refusal; over-refusal unless the request is harmful
unsafe        harmful help (a harmful request), else the good answer plus
              unsafe advice
truncated     the good answer cut off mid-sentence
============  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alignkit.lab.families import FAMILIES, Task
from alignkit.lab.language import (
    FILLERS,
    REFUSALS,
    RUDE_REFUSALS,
    RUDE_REMARKS,
    UNSAFE_ADVICE,
    is_word,
    tokens,
)
from alignkit.lab.sampling import pick, pick_distinct

STYLES = ("good", "wrong", "rude", "verbose", "refusal", "unsafe", "truncated")

SFT_MIX: Mapping[str, float] = {"good": 0.45, "wrong": 0.10, "rude": 0.11, "verbose": 0.13,
                                "refusal": 0.07, "unsafe": 0.09, "truncated": 0.05}
"""Styles of the SFT demonstrations: the largest share good, the rest the flaws of web
text. Style flaws outweigh wrong content because preference data can teach style to a
model this small, while content stays limited by its size (docs/lab.md)."""


def respond(rng: np.random.Generator, task: Task, style: str) -> str:
    """A response to ``task`` in ``style`` (one of :data:`STYLES`)."""
    family = FAMILIES[task.family]
    if style == "good":
        return family.good(rng, task)
    if style == "wrong":
        return family.wrong(rng, task)
    if style == "rude":
        if family.harmful:
            return pick(rng, RUDE_REFUSALS)
        remark, answer = pick(rng, RUDE_REMARKS), family.good(rng, task)
        return f"{remark} {answer}" if rng.random() < 0.5 else f"{answer} {remark}"
    if style == "verbose":
        return _padded(rng, family.good(rng, task))
    if style == "refusal":
        return pick(rng, REFUSALS)
    if style == "unsafe":
        if family.harmful:
            return family.wrong(rng, task)
        return f"{family.good(rng, task)} {pick(rng, UNSAFE_ADVICE)}"
    if style == "truncated":
        return _cut(rng, family.good(rng, task))
    raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")


def _padded(rng: np.random.Generator, answer: str) -> str:
    """The answer, 2 to 4 filler sentences, and half the time the answer again."""
    parts = [answer, *pick_distinct(rng, FILLERS, int(rng.integers(2, 5)))]
    if rng.random() < 0.5:
        parts.append(answer)
    return " ".join(parts)


def _cut(rng: np.random.Generator, answer: str) -> str:
    """The answer's first few tokens: at least one word, never ending on punctuation."""
    pieces = tokens(answer)
    kept = pieces[: int(rng.integers(1, max(2, len(pieces) - 1)))]
    while kept and not is_word(kept[-1]):
        kept.pop()
    return " ".join(kept or pieces[:1])
