"""Terminal tables of a pipeline run: the plan of a dry run, and what each stage did."""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

from alignkit.pipeline.plan import Decision
from alignkit.pipeline.runner import PipelineResult


def plan_table(result: PipelineResult, until: str | None = None) -> Table:
    """What a run would do with each stage, and why (``--dry-run``)."""
    table = Table(title=f"plan for {escape(result.pipeline.output_dir.as_posix())} "
                        "(dry run: nothing runs)", title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("stage", "kind", "action", "why"):
        table.add_column(column)
    decided: dict[str, Decision] = {d.stage.name: d for d in result.decisions}
    for stage in result.pipeline.stages:
        decision = decided.get(stage.name)
        if decision is None:
            table.add_row(stage.name, stage.kind.name, "-", f"not reached (--until {until})")
        else:
            table.add_row(stage.name, stage.kind.name, decision.action,
                          escape(decision.reason))
    return table


def outcome_table(result: PipelineResult) -> Table:
    """Each stage's status and the seconds its output took."""
    table = Table(title=f"pipeline {escape(result.pipeline.output_dir.as_posix())}",
                  title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for column, justify in (("stage", "left"), ("kind", "left"), ("status", "left"),
                            ("seconds", "right")):
        table.add_column(column, justify=justify)
    for outcome in result.outcomes:
        seconds = "-" if outcome.seconds is None else f"{outcome.seconds:.1f}"
        table.add_row(outcome.name, outcome.kind, outcome.status, seconds)
    return table
