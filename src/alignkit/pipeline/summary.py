"""The headline table of a pipeline's evaluation, read from ``eval/evaluation.json``.

One row per policy: the judge's score (the gold total in the lab), the win
rate against the baseline, the KL from the baseline, the refusal rate on
harmful prompts and the over-refusal rate on harmless ones, each with its
95% bootstrap interval. Below it, each reward model's accuracy against the
true order and the annotator panel's ceiling on the same pairs.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.markup import escape
from rich.table import Table

from alignkit.eval.display import interval
from alignkit.eval.stats import Interval
from alignkit.pipeline.report_results import EVALUATION_FILE, Evaluation, read_evaluation

NOT_MEASURED = "-"


def _shown(value: Interval | None, digits: int = 2) -> str:
    return NOT_MEASURED if value is None else interval(value, digits)


def policy_table(evaluation: Evaluation) -> Table:
    """One row per policy, the baseline first."""
    baseline = evaluation.baseline
    gold = evaluation.judge == "gold"
    columns = [("policy", "left"), ("gold total" if gold else "judge score", "right"),
               (f"win rate vs {baseline}", "right"), (f"KL from {baseline}", "right")]
    optional = [("refusal_rate", "refusals on harmful"),
                ("over_refusal_rate", "over-refusals")]
    shown = [(key, title) for key, title in optional  # only the suites that were run
             if any(getattr(p, key) is not None for p in evaluation.policies.values())]
    prompts = evaluation.prompts
    table = Table(title=f"evaluation: judge {escape(evaluation.judge)}"
                        + (f", {prompts} prompts" if prompts else "")
                        + ", 95% intervals", title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD)
    for title, justify in [*columns, *((title, "right") for _, title in shown)]:
        table.add_column(escape(title), justify=justify)
    for name, policy in evaluation.policies.items():  # the baseline comes first
        versus = name != baseline
        win = policy.win_rate.rate if policy.win_rate else None
        table.add_row(escape(name), _shown(policy.gold if gold else policy.score),
                      _shown(win) if versus else "baseline",
                      _shown(policy.kl, 1) if versus else NOT_MEASURED,
                      *(_shown(getattr(policy, key)) for key, _ in shown))
    return table


def reward_model_table(evaluation: Evaluation) -> Table | None:
    """Each reward model's accuracy against the true order, beside the annotators' ceiling."""
    if not evaluation.reward_models:
        return None
    table = Table(title="reward models on held-out pairs ordered by the true reward",
                  title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for title, justify in (("reward model", "left"), ("accuracy vs true order", "right"),
                           ("annotator panel ceiling", "right"), ("pairs", "right")):
        table.add_column(title, justify=justify)
    for name, model in evaluation.reward_models.items():
        table.add_row(escape(name), _shown(model.accuracy), _shown(model.ceiling),
                      NOT_MEASURED if model.pairs is None else str(model.pairs))
    return table


def summary_tables(eval_dir: Path) -> list[Table]:
    """The tables of the evaluation in ``eval_dir`` (policies, then reward models if any).

    Raises:
        DataError: the file is missing, not JSON, or lacks its ``policies``.
    """
    evaluation = read_evaluation(eval_dir / EVALUATION_FILE)
    tables = [policy_table(evaluation)]
    models = reward_model_table(evaluation)
    return [*tables, models] if models is not None else tables
