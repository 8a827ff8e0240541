"""The headline table of a pipeline's evaluation, read from ``eval/evaluation.json``.

One row per policy: the judge's score (the gold total in the lab), the win
rate against the baseline, the KL from the baseline, the refusal rate on
harmful prompts and the over-refusal rate on harmless ones, each with its
95% bootstrap interval. Below it, each reward model's accuracy against the
true order and the annotator panel's ceiling on the same pairs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from alignkit.errors import DataError
from alignkit.eval.display import interval
from alignkit.eval.stats import Interval

EVALUATION_FILE = "evaluation.json"
NOT_MEASURED = "-"


def read_evaluation(path: Path) -> dict[str, Any]:
    """The evaluation document at ``path``.

    Raises:
        DataError: the file is missing, not JSON, or lacks its ``policies``.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("missing_file", "no evaluation here", source=str(path)) from None
    except (OSError, ValueError) as exc:
        raise DataError("invalid_json", f"not a JSON document: {exc}", source=str(path)) from None
    if not isinstance(document, dict) or not isinstance(document.get("policies"), dict):
        raise DataError("missing_field", "an evaluation needs a 'policies' object",
                        source=str(path), field="policies")
    return document


def _interval(value: Any) -> Interval | None:
    """``{"value", "low", "high", "n"}`` as an Interval (missing or null ends read as NaN)."""
    if not isinstance(value, dict) or "value" not in value:
        return None

    def number(key: str) -> float:
        x = value.get(key)
        return float(x) if isinstance(x, int | float) else math.nan

    return Interval(number("value"), number("low"), number("high"), int(value.get("n") or 0))


def _shown(value: Any, digits: int = 2) -> str:
    found = _interval(value)
    return NOT_MEASURED if found is None else interval(found, digits)


def policy_table(evaluation: dict[str, Any]) -> Table:
    """One row per policy, the baseline first."""
    policies: dict[str, Any] = evaluation["policies"]
    baseline = evaluation.get("baseline")
    gold = evaluation.get("judge") == "gold"
    columns = [("policy", "left"), ("gold total" if gold else "judge score", "right"),
               (f"win rate vs {baseline}", "right"), (f"KL from {baseline}", "right")]
    optional = [("refusal_rate", "refusals on harmful"),
                ("over_refusal_rate", "over-refusals")]
    shown = [(key, title) for key, title in optional  # only the suites that were run
             if any(key in row for row in policies.values())]
    prompts = evaluation.get("prompts")
    table = Table(title=f"evaluation: judge {escape(str(evaluation.get('judge')))}"
                        + (f", {prompts} prompts" if prompts else "")
                        + ", 95% intervals", title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD)
    for title, justify in [*columns, *((title, "right") for _, title in shown)]:
        table.add_column(escape(title), justify=justify)
    order = sorted(policies, key=lambda name: name != baseline)
    for name in order:
        row = policies[name]
        score = (row.get("aspects") or {}).get("total") if gold else row.get("score")
        win = (row.get("win_rate") or {}).get("rate")
        versus = name != baseline
        table.add_row(escape(name), _shown(score),
                      _shown(win) if versus else "baseline",
                      _shown(row.get("kl"), 1) if versus else NOT_MEASURED,
                      *(_shown(row.get(key)) for key, _ in shown))
    return table


def reward_model_table(evaluation: dict[str, Any]) -> Table | None:
    """Each reward model's accuracy against the true order, beside the annotators' ceiling."""
    models = evaluation.get("reward_models") or {}
    if not models:
        return None
    table = Table(title="reward models on held-out pairs ordered by the true reward",
                  title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for title, justify in (("reward model", "left"), ("accuracy vs true order", "right"),
                           ("annotator panel ceiling", "right"), ("pairs", "right")):
        table.add_column(title, justify=justify)
    for name, row in models.items():
        table.add_row(escape(name), _shown(row.get("accuracy")), _shown(row.get("ceiling")),
                      str(row.get("pairs", NOT_MEASURED)))
    return table


def summary_tables(eval_dir: Path) -> list[Table]:
    """The tables of the evaluation in ``eval_dir`` (policies, then reward models if any)."""
    evaluation = read_evaluation(eval_dir / EVALUATION_FILE)
    tables = [policy_table(evaluation)]
    models = reward_model_table(evaluation)
    return [*tables, models] if models is not None else tables
