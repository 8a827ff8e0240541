"""``alignkit report RUN_DIR``: write the HTML report of a pipeline or run directory."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report", short_help="Write the HTML report of a pipeline or run directory.")
@click.argument("run_dir", metavar="RUN_DIR",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The HTML file to write [default: RUN_DIR/report.html].")
def report(run_dir: Path, output: Path | None) -> None:
    """Write one self-contained HTML file about RUN_DIR and print its path.

    RUN_DIR is a pipeline directory (written by `alignkit run` or `alignkit demo`,
    it holds pipeline.json) or the run directory of one training command (it holds
    config.yaml and metrics.jsonl).

    A pipeline report shows the stages, training curves and alarms, the reward
    model's accuracy against its annotators' ceiling, the gold reward per aspect,
    win rates, KL and the over-optimisation curve, proxy against gold reward over
    training, refusal and over-refusal rates, and sample responses side by side.
    A run report shows the run's curves, events and configuration. What the
    directory lacks is noted in place. The file has its CSS and figures inside,
    needs no script and references nothing outside itself. How to read it:
    docs/report.md.
    """
    from alignkit.pipeline.report import write_report

    click.echo(str(write_report(run_dir, output)))
