"""The rows of every lab dataset, each drawn from its own seeded stream.

Row ``i`` of a dataset depends only on the seed and ``i``'s predecessors in the
same stream, so a smaller size gives a prefix of a larger one.

Labels come from the simulated panel (:mod:`alignkit.lab.annotators`), never
from the gold reward directly, except in ``gold_pairs_eval``, which exists to
measure a reward model against gold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from alignkit.data.schema import Meta, PreferencePair, RankedSet, SFTExample, UnpairedExample
from alignkit.lab.annotators import approve, compare, compare_harm, majority, rank_scores
from alignkit.lab.families import FAMILIES, Task
from alignkit.lab.gold import GoldScore, score_task
from alignkit.lab.prompts import sample_task
from alignkit.lab.responses import SFT_MIX, STYLES, respond
from alignkit.lab.sampling import pick_distinct, pick_weighted, stream

PAIR_MIX: Mapping[str, float] = {"good": 0.50, "wrong": 0.12, "rude": 0.09, "verbose": 0.09,
                                 "refusal": 0.08, "unsafe": 0.08, "truncated": 0.04}
"""Styles of the responses compared in pairs (the second differs from the first)."""
KTO_MIX: Mapping[str, float] = {"good": 0.50, "wrong": 0.12, "rude": 0.08, "verbose": 0.10,
                                "refusal": 0.08, "unsafe": 0.07, "truncated": 0.05}
RANKED_RESPONSES = 4
GOLD_TIE = 0.1
"""Held-out gold pairs whose totals differ by less than this are not used."""
_TRIES = 8  # redraws of a second response that happens to equal the first


def as_reply(text: str) -> list[dict[str, str]]:
    """A response as the one assistant message the data formats expect after a chat prompt."""
    return [{"role": "assistant", "content": text}]


def _meta(kind: str, index: int, task: Task, **extra: Any) -> Meta:
    return Meta(id=f"{kind}-{index:05d}", category=task.family, **extra)


def sft_examples(seed: int, n: int) -> list[SFTExample]:
    """Demonstrations in the styles of :data:`~alignkit.lab.responses.SFT_MIX`."""
    rng = stream(seed, "sft")
    examples = []
    for i in range(n):
        task = sample_task(rng)
        text = respond(rng, task, pick_weighted(rng, SFT_MIX))
        examples.append(SFTExample(prompt=task.prompt, completion=as_reply(text),
                                   meta=_meta("sft", i, task)))
    return examples


def _two_responses(rng: np.random.Generator, task: Task) -> tuple[str, str]:
    """Two different responses in two different styles, in random order."""
    first_style = pick_weighted(rng, PAIR_MIX)
    others = {s: w for s, w in PAIR_MIX.items() if s != first_style}
    first = respond(rng, task, first_style)
    for _ in range(_TRIES):
        second = respond(rng, task, pick_weighted(rng, others))
        if second != first:
            break
    return (first, second) if rng.random() < 0.5 else (second, first)


def _scored_pairs(rng: np.random.Generator, keep: Callable[[GoldScore, GoldScore], bool]
                  ) -> Iterator[tuple[Task, tuple[str, GoldScore], tuple[str, GoldScore]]]:
    """Endless pairs of :func:`_two_responses` with their gold scores, those ``keep`` accepts."""
    while True:
        task = sample_task(rng)
        a, b = _two_responses(rng, task)
        score_a, score_b = score_task(task, a), score_task(task, b)
        if keep(score_a, score_b):
            yield task, (a, score_a), (b, score_b)


def preference_pairs(seed: int, n: int) -> tuple[list[PreferencePair], list[dict[str, Any]]]:
    """Pairs labelled by the panel, and the panel's votes as a wide table.

    In a pair, ``chosen`` is the majority's choice and ``meta.labels`` maps
    each annotator to ``"chosen"`` or ``"rejected"``. The table has one row per
    pair with ``id``, ``category`` and each annotator's vote, ``"a"`` or
    ``"b"`` for the response shown first or second: the shape
    ``alignkit data agreement --annotators`` reads.
    """
    rng = stream(seed, "pairs")
    pairs, table = [], []
    for i in range(n):
        task = sample_task(rng)
        a, b = _two_responses(rng, task)
        votes = compare(rng, score_task(task, a), score_task(task, b))
        a_wins = majority(votes)
        chosen, rejected = (a, b) if a_wins else (b, a)
        labels = {name: "chosen" if vote == a_wins else "rejected" for name, vote in votes.items()}
        meta = _meta("pair", i, task, labels=labels)
        pairs.append(PreferencePair(prompt=task.prompt, chosen=as_reply(chosen),
                                    rejected=as_reply(rejected), meta=meta))
        table.append({"id": meta.id, "category": task.family,
                      **{name: "a" if vote else "b" for name, vote in votes.items()}})
    return pairs, table


def harm_pairs(seed: int, n: int) -> list[PreferencePair]:
    """Pairs labelled by the panel for harm alone: ``chosen`` is the more harmful response.

    The data of a cost model (Safe RLHF): trained like a reward model on these
    pairs, it scores harm. Only pairs whose responses differ in gold
    harmlessness are shown to the panel (a rude or unsafe answer against
    another style); ``meta.labels`` holds the votes.
    """
    rng = stream(seed, "harm_pairs")
    pairs = []
    for task, (a, score_a), (b, score_b) in _scored_pairs(
            rng, lambda x, y: x.harmlessness != y.harmlessness):
        if len(pairs) == n:
            break
        votes = compare_harm(rng, score_a, score_b)
        a_worse = majority(votes)
        chosen, rejected = (a, b) if a_worse else (b, a)
        labels = {name: "chosen" if vote == a_worse else "rejected"
                  for name, vote in votes.items()}
        pairs.append(PreferencePair(prompt=task.prompt, chosen=as_reply(chosen),
                                    rejected=as_reply(rejected),
                                    meta=_meta("harm", len(pairs), task, labels=labels)))
    return pairs


def unpaired_examples(seed: int, n: int) -> list[UnpairedExample]:
    """Single responses with the panel's thumbs up or down; the majority is the label."""
    rng = stream(seed, "kto")
    examples = []
    for i in range(n):
        task = sample_task(rng)
        text = respond(rng, task, pick_weighted(rng, KTO_MIX))
        votes = approve(rng, score_task(task, text))
        examples.append(UnpairedExample(prompt=task.prompt, completion=as_reply(text),
                                        label=majority(votes),
                                        meta=_meta("kto", i, task, labels=votes)))
    return examples


def ranked_sets(seed: int, n: int) -> list[RankedSet]:
    """A good response and three in other styles, scored by the panel's Borda counts."""
    rng = stream(seed, "ranked")
    sets = []
    for i in range(n):
        task = sample_task(rng)
        styles = ["good", *pick_distinct(rng, STYLES[1:], RANKED_RESPONSES - 1)]
        texts = list(dict.fromkeys(respond(rng, task, s) for s in styles))
        order = rng.permutation(len(texts))
        texts = [texts[int(j)] for j in order]
        scores = rank_scores(rng, [score_task(task, t) for t in texts])
        sets.append(RankedSet(prompt=task.prompt, completions=[as_reply(t) for t in texts],
                              scores=scores, meta=_meta("ranked", i, task)))
    return sets


def gold_pairs(seed: int, n: int) -> list[PreferencePair]:
    """Held-out pairs whose ``chosen`` has the higher gold total.

    ``meta.margin`` is the gold difference and ``meta.labels`` the panel's
    votes (``"chosen"`` agrees with gold), so the panel's accuracy against gold,
    the ceiling a reward model trained on panel labels is measured against,
    comes from the same file.
    """
    rng = stream(seed, "gold_pairs_eval")
    pairs = []
    for task, (a, score_a), (b, score_b) in _scored_pairs(
            rng, lambda x, y: abs(x.total - y.total) >= GOLD_TIE):
        if len(pairs) == n:
            break
        if score_a.total < score_b.total:
            (a, score_a), (b, score_b) = (b, score_b), (a, score_a)
        votes = compare(rng, score_a, score_b)
        labels = {name: "chosen" if vote else "rejected" for name, vote in votes.items()}
        meta = _meta("gold", len(pairs), task, margin=round(score_a.total - score_b.total, 6),
                     labels=labels)
        pairs.append(PreferencePair(prompt=task.prompt, chosen=as_reply(a), rejected=as_reply(b),
                                    meta=meta))
    return pairs


def prompt_rows(seed: int, n: int, name: str, *, heldout: bool,
                family: str | None = None) -> list[dict[str, Any]]:
    """Prompt-only rows ``{prompt, id, category}``.

    Held-out rows cycle through the families (or use ``family``) so every
    family is equally represented; training rows follow the training mix.
    """
    rng = stream(seed, name)
    names = list(FAMILIES)
    rows = []
    for i in range(n):
        chosen_family = family or (names[i % len(names)] if heldout else None)
        task = sample_task(rng, heldout=heldout, family=chosen_family)
        rows.append({"prompt": task.prompt, "id": f"{name}-{i:05d}", "category": task.family})
    return rows

