"""The HTML report of a pipeline directory or of one run directory: one self-contained file.

:func:`write_report` reads the directory (:mod:`~alignkit.pipeline.report_data`),
builds each section from what is there (:mod:`~alignkit.pipeline.report_training`,
:mod:`~alignkit.pipeline.report_eval`, :mod:`~alignkit.pipeline.report_samples`),
and writes ``report.html``: CSS inline, figures embedded, no script and no
external reference, so it opens offline in any browser. A part the run lacks
is a one-line "not in this run" note, never an error.

Section ids are stable (tests and links rely on them):

* pipeline: ``summary``, ``training``, ``reward-model``, ``gold``,
  ``win-rate``, ``kl``, ``reward-hacking``, ``safety``, ``samples``, ``config``;
* run directory: ``summary``, ``training``, ``reward-hacking`` (online runs), ``config``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alignkit.atomic import atomic_write_text
from alignkit.errors import AlignkitError
from alignkit.pipeline import report_eval, report_training
from alignkit.pipeline.report_data import (
    ONLINE_KINDS,
    PIPELINE_FILE,
    PipelineData,
    TrainingRun,
    read_pipeline,
    read_training_run,
)
from alignkit.pipeline.report_html import (
    Html,
    element,
    note,
    number,
    page,
    paragraph,
    seconds,
    section,
    table,
)
from alignkit.pipeline.report_samples import samples_section
from alignkit.rundir import RunDir, is_run_dir

REPORT_FILE = RunDir.REPORT


def write_report(directory: Path, output: Path | None = None) -> Path:
    """Write the report of a pipeline or run directory; returns the file written.

    Args:
        directory: a pipeline directory (``pipeline.json``) or a run directory
            (``config.yaml`` and ``metrics.jsonl``).
        output: the HTML file [default: ``directory/report.html``]; its folder
            is created when missing.

    Raises:
        AlignkitError: ``directory`` is neither; DataError: one of its files is malformed.
    """
    directory = Path(directory)
    if (directory / PIPELINE_FILE).is_file():
        document = pipeline_page(read_pipeline(directory))
    elif is_run_dir(directory):
        document = run_page(directory)
    else:
        state = "does not exist" if not directory.exists() else (
            "is a file" if not directory.is_dir() else "holds neither")
        raise AlignkitError(
            f"cannot report on {directory}: it {state}; expected a pipeline directory (with "
            f"{PIPELINE_FILE}) or a run directory (with {RunDir.CONFIG} and {RunDir.METRICS})")
    output = Path(output) if output is not None else directory / REPORT_FILE
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, document)
    return output


def _made() -> str:
    return dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _status(status: str) -> Html:
    return element("span", status, f"status-{status}")


def _stage_rows(data: PipelineData) -> list[list[object]]:
    rows = []
    for stage in data.stages:
        run = data.runs.get(stage.name)
        rows.append([stage.name, stage.kind, _status(stage.status), seconds(stage.seconds),
                     number(run.steps) if run else "—",
                     report_training.alarm_count(run) if run else "—"])
    return rows


def pipeline_summary(data: PipelineData) -> list[Html]:
    """The stages with kind, status and time, then the evaluation's headline figures."""
    total = sum(s.seconds or 0.0 for s in data.stages)
    done = sum(s.status == "done" for s in data.stages)
    parts = [paragraph(f"{done} of {len(data.stages)} stages done in {seconds(total)}."),
             table(["stage", "kind", "status", "time", "steps", "alarms"], _stage_rows(data))]
    if data.evaluation is None:
        return [*parts, note(report_eval.NO_EVALUATION)]
    return parts + report_eval.headline(data.evaluation)


def _config_part(text: str | None, name: str) -> list[Html]:
    if text is None:
        return [note(name)]
    return [Html(f"<details open><summary>{element('code', name)}</summary>"
                 f"{element('pre', text)}</details>")]


def pipeline_page(data: PipelineData) -> Html:
    """Every section of a pipeline report, in reading order."""
    evaluation = data.evaluation
    sections = [
        ("summary", "Summary", pipeline_summary(data)),
        ("training", "Training", report_training.training_section(data.runs)),
        ("reward-model", "Reward model", report_eval.reward_model_section(evaluation)),
        ("gold", "Gold reward", report_eval.gold_section(evaluation)),
        ("win-rate", "Win rate", report_eval.win_rate_section(evaluation)),
        ("kl", "KL and over-optimisation", report_eval.kl_section(evaluation)),
        ("reward-hacking", "Reward hacking",
         report_training.reward_hacking_section(data.runs)),
        ("safety", "Safety and over-refusal", report_eval.safety_section(evaluation)),
        ("samples", "Samples", samples_section(evaluation, data.samples)),
        ("config", "Configuration", _config_part(data.pipeline_yaml, "pipeline.yaml")),
    ]
    return _assemble(f"alignkit pipeline report: {data.directory.name}",
                     f"{data.directory} · written {_made()}", sections)


def run_page(directory: Path) -> Html:
    """A lone run directory: its summary, curves and events, and its configuration."""
    run = read_training_run(directory, directory.name)
    config = (directory / RunDir.CONFIG).read_text(encoding="utf-8")
    sections = [("summary", "Summary", _run_summary(directory, run)),
                ("training", "Training", report_training.run_parts(run))]
    if run.kind in ONLINE_KINDS:
        sections.append(("reward-hacking", "Reward hacking",
                         report_training.reward_hacking_section({run.name: run})))
    sections.append(("config", "Configuration", _config_part(config, RunDir.CONFIG)))
    return _assemble(f"alignkit run report: {directory.name}",
                     f"{directory} · written {_made()}", sections)


def _run_summary(directory: Path, run: TrainingRun) -> list[Html]:
    finished = "finished (final/ is complete)" if RunDir(directory).finished else \
        "not finished (no complete final/)"
    return [table(["run", "kind", "state", "steps", "alarms"],
                  [[run.name, run.kind, finished, number(run.steps),
                    report_training.alarm_count(run)]])]


def _assemble(title: str, subtitle: str, sections: list[tuple[str, str, list[Html]]]) -> Html:
    return page(title, subtitle,
                [(sid, heading, section(sid, heading, parts)) for sid, heading, parts in sections])
