"""The eval stage's figures and the per-item rows behind them.

Each model gets one entry of ``evaluation.json`` (:func:`model_entry`), each
reward model one more (:func:`reward_model_entry`); every interval is written
as ``{"value", "low", "high", "n"}``. The rows of ``responses.jsonl``,
``rm_pairs.jsonl`` and ``samples.jsonl`` hold what each figure is computed
from, so any figure can be recomputed by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alignkit.data.schema import PreferencePair, Text
from alignkit.eval.annotators import Votes
from alignkit.eval.generation import Samples
from alignkit.eval.kl import kl_estimate
from alignkit.eval.policy_eval import compare_scores
from alignkit.eval.results import to_jsonable
from alignkit.eval.rm_eval import PairRewards
from alignkit.eval.rm_figures import pair_correctness
from alignkit.eval.stats import Interval, mean_interval
from alignkit.pipeline.eval_inputs import REFUSAL_SETS, PromptSet


@dataclass
class ModelResults:
    """Everything measured on one model, filled in phase by phase.

    Attributes:
        path: the model as configured.
        samples: prompt set name -> the model's responses.
        kl_terms: per-response KL terms against the baseline on ``prompts``
            (:func:`alignkit.eval.kl.sample_terms`); ``None`` for the baseline and
            when the tokenizers differ.
        kl_note: why there is no KL, or empty.
        scores: ``(n,)`` judge score of each response to ``prompts``.
        aspects: gold aspect -> ``(n,)`` values (only with the gold judge).
        proxy: reward model name -> ``(n,)`` its reward of each response to ``prompts``.
        refused: refusal set name -> ``(n,)`` bool, whether each response refuses.
    """

    path: str
    samples: dict[str, Samples]
    kl_terms: dict[str, np.ndarray] | None = None
    kl_note: str = ""
    scores: np.ndarray | None = None
    aspects: dict[str, np.ndarray] = field(default_factory=dict)
    proxy: dict[str, np.ndarray] = field(default_factory=dict)
    refused: dict[str, np.ndarray] = field(default_factory=dict)


def interval_json(interval: Interval) -> dict[str, Any]:
    """``{"value", "low", "high", "n"}``, undefined ends as ``null``."""
    return to_jsonable({"value": interval.value, "low": interval.low, "high": interval.high,
                        "n": interval.n})


def _mean(values: np.ndarray, options: dict) -> dict[str, Any]:
    return interval_json(mean_interval(np.asarray(values, dtype=np.float64), **options))


def gold_aspects(prompts: Sequence[Text], responses: Sequence[str]) -> dict[str, np.ndarray]:
    """Every aspect of the lab's gold reward, and its total, per response: name -> ``(n,)``."""
    from alignkit.lab.gold import ASPECTS, gold_score

    scores = [gold_score(p, r) for p, r in zip(prompts, responses, strict=True)]
    return {name: np.array([getattr(s, name) for s in scores], dtype=np.float64)
            for name in (*ASPECTS, "total")}


def model_entry(results: ModelResults, baseline: ModelResults | None, *, top_p: float,
                tie_tolerance: float, options: dict) -> dict[str, Any]:
    """One model's figures; with a ``baseline`` also its win rate over it and KL from it."""
    prompts = results.samples["prompts"]
    entry: dict[str, Any] = {"path": results.path, "score": _mean(results.scores, options)}
    if results.aspects:
        entry["aspects"] = {k: _mean(v, options) for k, v in results.aspects.items()}
    if results.proxy:
        entry["proxy"] = {k: _mean(v, options) for k, v in results.proxy.items()}
    for name, figure in REFUSAL_SETS.items():
        if name in results.refused:
            entry[figure] = _mean(results.refused[name], options)
    entry["length"] = _mean(prompts.lengths, options)
    entry["unfinished"] = _mean(~prompts.ended, options)
    if baseline is None:
        return entry
    comparison = compare_scores(results.scores, baseline.scores, tie_tolerance=tie_tolerance,
                                **options)
    entry["win_rate"] = {"wins": comparison.wins, "ties": comparison.ties,
                         "losses": comparison.losses,
                         "rate": interval_json(comparison.win_rate)}
    entry["kl"], note = None, results.kl_note
    if results.kl_terms is not None:
        estimate = kl_estimate(results.kl_terms, top_p=top_p, **options)
        entry["kl"] = interval_json(estimate.value)
        entry["kl_per_token"] = to_jsonable(estimate.per_token)
        note = note or estimate.note
    if note:
        entry["kl_note"] = note
    return entry


def panel_agreement(votes: Sequence[Votes]) -> np.ndarray:
    """Per pair the panel voted on: does its majority agree with the pair's true order?

    ``(m,)``: 1 when the majority prefers the chosen (truly better) response, 0
    when it prefers the rejected one, 0.5 on an even split. Tie votes are left
    out, and so are pairs without a preferring vote.
    """
    agreement = []
    for pair in votes:
        total, decided = sum(pair.values()), any(v != 0 for v in pair.values())
        if decided:
            agreement.append(0.5 if total == 0 else float(total > 0))
    return np.array(agreement, dtype=np.float64)


def reward_model_entry(path: str, rewards: PairRewards | None, votes: Sequence[Votes],
                       options: dict) -> dict[str, Any]:
    """A reward model's accuracy on the pairs' true order, beside the panel's (the ceiling)."""
    entry: dict[str, Any] = {"path": path}
    if rewards is None:
        return entry
    entry["pairs"] = len(rewards.chosen)
    entry["accuracy"] = _mean(pair_correctness(rewards.chosen, rewards.rejected), options)
    agreement = panel_agreement(votes)
    if agreement.size:
        entry["ceiling"] = _mean(agreement, options)
        entry["labelled_pairs"] = int(agreement.size)
    return entry


def response_rows(sets: dict[str, PromptSet], models: dict[str, ModelResults]
                  ) -> Iterator[dict[str, Any]]:
    """One row per prompt of every set, with every model's response and what was measured."""
    for set_name, prompt_set in sets.items():
        for index, (prompt, category) in enumerate(zip(prompt_set.prompts,
                                                       prompt_set.categories, strict=True)):
            yield {"set": set_name, "index": index, "prompt": prompt, "category": category,
                   "responses": {name: _response(results, set_name, index)
                                 for name, results in models.items()}}


def _response(results: ModelResults, set_name: str, index: int) -> dict[str, Any]:
    samples = results.samples[set_name]
    row: dict[str, Any] = {"text": samples.texts[index],
                           "tokens": len(samples.response_ids[index]),
                           "ended": bool(samples.ended[index])}
    if set_name != "prompts":
        row["refused"] = bool(results.refused[set_name][index])
        return row
    row["score"] = float(results.scores[index])
    if results.kl_terms is not None:
        row["kl"] = float(results.kl_terms["exact_kl"][index])
    if results.proxy:
        row["proxy"] = {name: float(values[index]) for name, values in results.proxy.items()}
    return row


def sample_rows(prompt_set: PromptSet, indices: Sequence[int],
                models: dict[str, ModelResults]) -> list[dict[str, Any]]:
    """The side-by-side samples: the chosen prompts with every model's response and score."""
    return [{"prompt": prompt_set.prompts[i], "category": prompt_set.categories[i],
             "responses": {name: {"text": r.samples["prompts"].texts[i],
                                  "score": float(r.scores[i])} for name, r in models.items()}}
            for i in indices]


def pair_rows(pairs: Sequence[PreferencePair], votes: Sequence[Votes],
              rewards: dict[str, PairRewards]) -> Iterator[dict[str, Any]]:
    """One row per pair: its panel votes and each reward model's rewards."""
    for index, (pair, pair_votes) in enumerate(zip(pairs, votes, strict=True)):
        yield {"index": index, "id": pair.meta.id, "category": pair.meta.category,
               "votes": {"chosen": sum(v > 0 for v in pair_votes.values()),
                         "rejected": sum(v < 0 for v in pair_votes.values()),
                         "tie": sum(v == 0 for v in pair_votes.values())},
               "rewards": {name: {"chosen": float(r.chosen[index]),
                                  "rejected": float(r.rejected[index])}
                           for name, r in rewards.items()}}
