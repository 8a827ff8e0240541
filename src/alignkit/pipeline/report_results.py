"""The eval stage's ``evaluation.json`` and ``samples.jsonl`` read into plain dataclasses.

Figures the evaluation did not measure are ``None`` (or absent from their
mapping); a figure that is present but malformed is a
:class:`~alignkit.errors.DataError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.errors import DataError
from alignkit.eval.stats import Interval

EVALUATION_FILE = "evaluation.json"
"""The eval stage's result, in its stage directory."""


@dataclass(frozen=True)
class WinRate:
    """A policy's outcomes against the baseline under the judge."""

    wins: int
    ties: int
    losses: int
    rate: Interval


@dataclass(frozen=True)
class PolicyResult:
    """The eval stage's figures for one policy (``None`` where it measured nothing).

    ``kl_note`` is the eval stage's reason when KL could not be estimated (or is biased).
    """

    name: str
    score: Interval | None
    aspects: dict[str, Interval]
    proxy: dict[str, Interval]
    refusal_rate: Interval | None
    over_refusal_rate: Interval | None
    length: Interval | None
    win_rate: WinRate | None
    kl: Interval | None
    kl_note: str | None = None

    @property
    def gold(self) -> Interval | None:
        """The gold reward's total, when the judge was the lab's gold reward."""
        return self.aspects.get("total")


@dataclass(frozen=True)
class RewardModelResult:
    """A reward model's held-out accuracy against the gold order and the annotators' ceiling."""

    name: str
    accuracy: Interval | None
    ceiling: Interval | None
    pairs: int | None


@dataclass
class Evaluation:
    """``evaluation.json`` of the eval stage; ``policies`` lists the baseline first."""

    path: Path
    judge: str
    prompts: int | None
    baseline: str
    policies: dict[str, PolicyResult]
    reward_models: dict[str, RewardModelResult]
    samples_file: Path | None

    def aligned(self) -> list[PolicyResult]:
        """Every policy but the baseline."""
        return [p for name, p in self.policies.items() if name != self.baseline]


@dataclass(frozen=True)
class Sample:
    """One prompt with every policy's response and its judge score."""

    prompt: str
    category: str | None
    responses: dict[str, tuple[str, float | None]]


def read_json(path: Path) -> Any:
    """A JSON file's content, or a DataError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("missing_file", "no such file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError("unreadable_file", f"cannot read it: {exc}", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise DataError("invalid_json", f"not JSON: {exc.msg} (line {exc.lineno})",
                        source=str(path)) from None


# -- evaluation.json --------------------------------------------------------------------------

def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else math.nan


def _interval(value: Any, path: Path, where: str) -> Interval | None:
    """``{"value", "low", "high", "n"}`` as an Interval (``null`` figures become nan)."""
    if value is None:
        return None
    if not isinstance(value, dict) or "value" not in value:
        raise DataError("bad_interval", 'expected {"value", "low", "high", "n"}',
                        source=str(path), field=where)
    n = value.get("n")
    return Interval(_number(value["value"]), _number(value.get("low")),
                    _number(value.get("high")), n if isinstance(n, int) else 0)


def _intervals(value: Any, path: Path, where: str) -> dict[str, Interval]:
    if not isinstance(value, dict):
        return {}
    found = {k: _interval(v, path, f"{where}.{k}") for k, v in value.items()}
    return {k: v for k, v in found.items() if v is not None}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _policy(name: str, row: Any, path: Path) -> PolicyResult:
    where = f"policies.{name}"
    if not isinstance(row, dict):
        raise DataError("bad_policy", "expected an object", source=str(path), field=where)
    win = row.get("win_rate")
    win_rate = None
    if isinstance(win, dict):
        rate = _interval(win.get("rate"), path, f"{where}.win_rate.rate")
        if rate is not None:
            win_rate = WinRate(_count(win.get("wins")), _count(win.get("ties")),
                               _count(win.get("losses")), rate)
    return PolicyResult(
        name=name, score=_interval(row.get("score"), path, f"{where}.score"),
        aspects=_intervals(row.get("aspects"), path, f"{where}.aspects"),
        proxy=_intervals(row.get("proxy"), path, f"{where}.proxy"),
        refusal_rate=_interval(row.get("refusal_rate"), path, f"{where}.refusal_rate"),
        over_refusal_rate=_interval(row.get("over_refusal_rate"), path,
                                    f"{where}.over_refusal_rate"),
        length=_interval(row.get("length"), path, f"{where}.length"),
        win_rate=win_rate, kl=_interval(row.get("kl"), path, f"{where}.kl"),
        kl_note=str(row["kl_note"]) if row.get("kl_note") else None)


def _reward_model(name: str, row: Any, path: Path) -> RewardModelResult:
    where = f"reward_models.{name}"
    if not isinstance(row, dict):
        raise DataError("bad_reward_model", "expected an object", source=str(path), field=where)
    pairs = row.get("pairs")
    return RewardModelResult(name, _interval(row.get("accuracy"), path, f"{where}.accuracy"),
                             _interval(row.get("ceiling"), path, f"{where}.ceiling"),
                             pairs if isinstance(pairs, int) else None)


def read_evaluation(path: Path) -> Evaluation:
    """``evaluation.json`` as an :class:`Evaluation` (baseline first among the policies)."""
    document = read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("policies"), dict):
        raise DataError("bad_evaluation", "expected an object with a 'policies' object",
                        source=str(path), field="policies")
    baseline = str(document.get("baseline", ""))
    rows = document["policies"]
    order = ([baseline] if baseline in rows else []) + [n for n in rows if n != baseline]
    policies = {name: _policy(name, rows[name], path) for name in order}
    models = document.get("reward_models")
    reward_models = ({name: _reward_model(name, row, path) for name, row in models.items()}
                     if isinstance(models, dict) else {})
    samples = document.get("samples")
    prompts = document.get("prompts")
    return Evaluation(path, str(document.get("judge", "unknown")),
                      prompts if isinstance(prompts, int) else None, baseline, policies,
                      reward_models, path.parent / samples if isinstance(samples, str) else None)


# -- samples.jsonl ----------------------------------------------------------------------------

def prompt_text(prompt: Any) -> str:
    """A prompt as text: a list of messages becomes ``role: content`` lines."""
    if isinstance(prompt, list):
        return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" if isinstance(m, dict)
                         else str(m) for m in prompt)
    return "" if prompt is None else str(prompt)


def read_samples(path: Path) -> list[Sample] | None:
    """The side-by-side samples, or ``None`` when the file is absent."""
    if not path.is_file():
        return None
    samples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError("invalid_json", f"not JSON: {exc.msg}", source=str(path),
                            row=number) from None
        responses = row.get("responses") if isinstance(row, dict) else None
        if not isinstance(responses, dict):
            raise DataError("bad_sample", "expected an object with a 'responses' object",
                            source=str(path), row=number, field="responses")
        kept = {}
        for name, response in responses.items():
            response = response if isinstance(response, dict) else {"text": response}
            score = response.get("score")
            kept[name] = (str(response.get("text", "")),
                          float(score) if isinstance(score, int | float) else None)
        category = row.get("category")
        samples.append(Sample(prompt_text(row.get("prompt")),
                              None if category is None else str(category), kept))
    return samples
