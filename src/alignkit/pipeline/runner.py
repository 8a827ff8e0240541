"""Run a resolved pipeline: each stage run, resumed or skipped (:mod:`alignkit.pipeline.plan`).

Before the first stage the runner writes ``pipeline.yaml`` (the resolved
pipeline) and ``pipeline.json`` (the state). Each stage is marked ``running``
before it starts and ``done`` or ``failed`` after, so a process killed at any
moment leaves a state the next run can act on. A stage run from scratch first
has its old directory deleted, and the records of every stage built from its
old output are dropped, so they run again too.
"""

from __future__ import annotations

import gc
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from alignkit.errors import AlignkitError
from alignkit.pipeline.plan import Decision, plan
from alignkit.pipeline.spec import Pipeline
from alignkit.pipeline.state import RESOLVED_FILE, STATE_FILE, PipelineState, fingerprints

Echo = Callable[[str], None]


class StageFailed(AlignkitError):
    """A stage stopped on a user error; the message names the stage."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one stage in this run.

    Attributes:
        name, kind: the stage.
        status: ``ran``, ``resumed``, ``skipped`` or ``not reached``.
        seconds: the time its output took, this run and earlier ones (``None`` when not reached).
    """

    name: str
    kind: str
    status: str
    seconds: float | None


@dataclass(frozen=True)
class PipelineResult:
    """A finished run (or a dry run's plan).

    Attributes:
        pipeline: the pipeline.
        decisions: what was (or would be) done with each stage reached.
        outcomes: one per stage of the pipeline, in order (empty for a dry run).
        report: the written ``report.html``, or ``None`` (dry run, or writing it failed).
    """

    pipeline: Pipeline
    decisions: list[Decision]
    outcomes: list[Outcome]
    report: Path | None


def run_pipeline(pipeline: Pipeline, *, rerun: Sequence[str] = (), until: str | None = None,
                 dry_run: bool = False, echo: Echo = print) -> PipelineResult:
    """Run (or with ``dry_run`` only plan) the stages of ``pipeline``.

    Args:
        pipeline: a resolved pipeline (:func:`alignkit.pipeline.spec.load_pipeline`).
        rerun: stages to run again whatever their state; the stages using them rerun too.
        until: stop after this stage.
        dry_run: decide and return, writing nothing.
        echo: where the one-line-per-stage progress goes.

    Raises:
        ConfigError: ``rerun`` or ``until`` names no stage.
        AlignkitError: the output directory holds something other than a pipeline,
            or a stage stopped on a user error (a :class:`StageFailed` naming it).
    """
    pipeline.check_names(rerun, "--rerun")
    pipeline.check_names([until] if until else [], "--until")
    _check_output_dir(pipeline.output_dir)
    state = PipelineState.load(pipeline.output_dir)
    decisions = plan(pipeline, state, fingerprints(pipeline), rerun, until)
    if dry_run:
        return PipelineResult(pipeline, decisions, [], None)
    pipeline.output_dir.mkdir(parents=True, exist_ok=True)
    _write_resolved(pipeline)
    state.keep_only(pipeline.names())
    state.save()
    statuses = {}
    for number, decision in enumerate(decisions, start=1):
        prefix = f"[{number}/{len(pipeline.stages)}] {decision.stage.name} " \
                 f"({decision.stage.kind.name})"
        statuses[decision.stage.name] = _run_stage(pipeline, state, decision, prefix, echo)
        _free_memory()
    return PipelineResult(pipeline, decisions, _outcomes(pipeline, state, statuses),
                          _write_report(pipeline.output_dir, echo))


def _check_output_dir(directory: Path) -> None:
    """Refuse a non-empty directory that is not a pipeline's: its folders would be replaced."""
    if directory.exists() and not directory.is_dir():
        raise AlignkitError(f"pipeline directory {directory} is a file")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / STATE_FILE).is_file():
        raise AlignkitError(f"{directory} is not empty and holds no {STATE_FILE}, so it is not "
                            "a pipeline directory; choose another output directory")


def _write_resolved(pipeline: Pipeline) -> None:
    from alignkit.atomic import atomic_write_text

    atomic_write_text(pipeline.output_dir / RESOLVED_FILE, pipeline.resolved_text())


def _run_stage(pipeline: Pipeline, state: PipelineState, decision: Decision, prefix: str,
               echo: Echo) -> str:
    stage = decision.stage
    if decision.action == "skip":
        echo(f"{prefix}: skipped, {decision.reason}")
        return "skipped"
    resume = decision.action == "resume"
    echo(f"{prefix}: {'resuming' if resume else 'running'} ({decision.reason})")
    if not resume:
        # Everything built from the old output is stale the moment that output is replaced.
        state.forget(pipeline.dependents(stage.name))
        if stage.directory.exists():
            shutil.rmtree(stage.directory)
    state.started(stage.name, stage.kind.name, decision.fingerprint, resumed=resume)
    begun = time.perf_counter()
    try:
        stage.kind.run(stage.config, stage.directory, resume)
    except BaseException as exc:
        seconds = time.perf_counter() - begun
        state.ended(stage.name, "failed", seconds)
        echo(f"{prefix}: failed after {seconds:.1f} s")
        if isinstance(exc, AlignkitError):
            failed = StageFailed(f"stage '{stage.name}' ({stage.kind.name}) failed: {exc}")
            failed.exit_code = exc.exit_code
            raise failed from exc
        raise
    seconds = time.perf_counter() - begun
    state.ended(stage.name, "done", seconds)
    echo(f"{prefix}: done in {seconds:.1f} s")
    return "resumed" if resume else "ran"


def _free_memory() -> None:
    """Let one stage's models go before the next loads its own."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _outcomes(pipeline: Pipeline, state: PipelineState,
              statuses: dict[str, str]) -> list[Outcome]:
    outcomes = []
    for stage in pipeline.stages:
        record = state.get(stage.name)
        status = statuses.get(stage.name, "not reached")
        seconds = record.seconds if record is not None and status != "not reached" else None
        outcomes.append(Outcome(stage.name, stage.kind.name, status, seconds))
    return outcomes


def _write_report(directory: Path, echo: Echo) -> Path | None:
    """``report.html``; a failure is reported but does not undo the stages' results."""
    try:
        from alignkit.pipeline.report import write_report

        return write_report(directory)
    except Exception as exc:
        detail = str(exc) if isinstance(exc, AlignkitError) else f"{type(exc).__name__}: {exc}"
        echo(f"report not written: {detail}")
        return None
