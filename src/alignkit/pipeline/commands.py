"""``alignkit run PIPELINE.yaml`` and ``alignkit demo``.

Stage progress goes to stderr with the trainers' own progress; the tables (the
plan, each stage's status, the evaluation summary) go to stdout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from alignkit.errors import AlignkitError

_TABLE_WIDTH = 110
_OVERRIDES_HELP = ("\b\nKEY=VALUE overrides apply to the whole pipeline file, e.g. seed=3 or "
                   "stages.dpo.loss.beta=0.2.")
_SKIP_RULES = (
    "\b\nA stage is skipped when it finished earlier with the same configuration and the\n"
    "same upstream stages; a stage whose configuration changed runs again, with every\n"
    "stage that uses its output; an interrupted training stage resumes from its last\n"
    "checkpoint. Everything is checked against its schema before the first stage runs.\n"
    "File format and rules: docs/pipelines.md")
_OUTPUT_HELP = "Pipeline directory [default: the file's output_dir]."
_DRY_RUN_HELP = "Print what each stage would do (run, resume or skip) and why; run nothing."


@click.command("run", epilog=_OVERRIDES_HELP + "\n\n" + _SKIP_RULES)
@click.argument("pipeline_file", metavar="PIPELINE.yaml",
                type=click.Path(path_type=Path, dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False),
              default=None, help=_OUTPUT_HELP)
@click.option("--rerun", multiple=True, metavar="NAME", help=(
    "Run stage NAME again whatever its state, and every stage that uses it (repeatable)."))
@click.option("--until", metavar="NAME", default=None, help="Stop after stage NAME.")
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
def run(pipeline_file: Path, overrides: tuple[str, ...], output: Path | None,
        rerun: tuple[str, ...], until: str | None, dry_run: bool) -> None:
    """Run the stages of a pipeline file in order: lab data, training runs, an evaluation.

    Each stage writes its own directory under the pipeline directory, beside
    pipeline.yaml (the resolved pipeline) and pipeline.json (each stage's state).
    At the end it prints what each stage did, the evaluation summary when the
    pipeline has an eval stage, and writes report.html.
    """
    from alignkit.pipeline.spec import load_pipeline

    pipeline = load_pipeline(pipeline_file, overrides, output)
    _execute(pipeline, rerun=rerun, until=until, dry_run=dry_run)


@click.command("demo", epilog=_OVERRIDES_HELP + "\n\n" + _SKIP_RULES)
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False),
              default=Path("runs/demo"), show_default=True, help="Pipeline directory.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the lab data and every run [default: 0].")
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
def demo(overrides: tuple[str, ...], output: Path, seed: int | None, dry_run: bool) -> None:
    """Align a tiny model from scratch on the lab, on CPU, and show that it worked.

    Generates the lab, trains SFT, a reward model, DPO, PPO and GRPO, evaluates every
    policy against the SFT baseline with the gold reward, and prints the summary
    and the path of report.html. The pipeline is the demo.yaml shipped with
    alignkit (examples/demo.yaml is a copy to start your own from). Run again,
    it skips what is done; interrupted, it resumes.
    """
    from alignkit.pipeline.spec import load_pipeline

    seeded = (*overrides, f"seed={seed}") if seed is not None else overrides
    with resources.as_file(resources.files("alignkit.pipeline") / "demo.yaml") as path:
        pipeline = load_pipeline(path, seeded, output)
    _execute(pipeline, rerun=(), until=None, dry_run=dry_run)


def _console():
    from rich.console import Console

    console = Console(highlight=False)
    console.width = max(console.width, _TABLE_WIDTH)
    return console


def _execute(pipeline, *, rerun: tuple[str, ...], until: str | None, dry_run: bool) -> None:
    from alignkit.pipeline.display import outcome_table, plan_table
    from alignkit.pipeline.runner import run_pipeline

    result = run_pipeline(pipeline, rerun=rerun, until=until, dry_run=dry_run,
                          echo=lambda line: click.echo(line, err=True))
    console = _console()
    if dry_run:
        console.print(plan_table(result, until))
        return
    console.print(outcome_table(result))
    _print_evaluations(result, console)
    if result.report is not None:
        click.echo(f"report: {result.report}")  # whole, never wrapped: it is for copying


def _print_evaluations(result, console) -> None:
    from alignkit.pipeline.summary import summary_tables

    reached = {o.name for o in result.outcomes if o.status != "not reached"}
    for stage in result.pipeline.stages:
        if stage.kind.name != "eval" or stage.name not in reached:
            continue
        try:
            tables = summary_tables(stage.directory)
        except AlignkitError as exc:
            click.echo(f"summary of {stage.name} not shown: {exc}", err=True)
            continue
        for table in tables:
            console.print(table)
