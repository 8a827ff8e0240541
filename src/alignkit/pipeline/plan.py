"""What a pipeline run will do with each stage, and why: run, resume or skip.

For each stage, in order, the first rule that applies decides:

1. named by ``--rerun``: **run**;
2. no record in ``pipeline.json``: **run**;
3. it uses a stage that runs or resumes now: **run** (its input changes);
4. its fingerprint changed (its own configuration did; an upstream change
   is caught by rule 2): **run**;
5. done, and its output is there: **skip**;
6. done, but its output is gone: **run**;
7. interrupted or failed, and a training run with a checkpoint: **resume**;
8. interrupted or failed otherwise: **run** from the start.

Stages after ``--until NAME`` are not reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from alignkit.pipeline.spec import Pipeline, Stage
from alignkit.pipeline.state import PipelineState, StageRecord

Action = Literal["run", "resume", "skip"]


@dataclass(frozen=True)
class Decision:
    """What happens to one stage.

    Attributes:
        stage: the stage.
        action: ``run`` (from scratch, replacing its directory), ``resume`` or ``skip``.
        reason: why, for a person (``its configuration changed``).
        fingerprint: the stage's fingerprint now.
    """

    stage: Stage
    action: Action
    reason: str
    fingerprint: str


def plan(pipeline: Pipeline, state: PipelineState, fingerprints: dict[str, str],
         rerun: Sequence[str] = (), until: str | None = None) -> list[Decision]:
    """The decision for every stage up to ``until`` (all when ``None``), in run order."""
    decisions: dict[str, Decision] = {}
    for stage in pipeline.stages:
        fingerprint = fingerprints[stage.name]
        action, reason = _decide(stage, state.get(stage.name), fingerprint, rerun, decisions)
        decisions[stage.name] = Decision(stage, action, reason, fingerprint)
        if stage.name == until:
            break
    return list(decisions.values())


def _decide(stage: Stage, record: StageRecord | None, fingerprint: str,
            rerun: Sequence[str], earlier: dict[str, Decision]) -> tuple[Action, str]:
    if stage.name in rerun:
        return "run", "asked for with --rerun"
    if record is None:
        return "run", "not run before"
    changed = [name for name in stage.uses if earlier[name].action != "skip"]
    if changed:
        verb = "runs" if earlier[changed[0]].action == "run" else "resumes"
        return "run", f"it uses {changed[0]}, which {verb} now"
    if record.fingerprint != fingerprint:
        return "run", "its configuration changed since it ran"
    if record.status == "done":
        if stage.kind.finished(stage.directory):
            return "skip", "done earlier with the same config"
        return "run", f"done earlier, but its output in {stage.directory} is missing"
    what = "interrupted" if record.status == "running" else "failed"
    if stage.kind.resumable(stage.directory):
        return "resume", f"{what} earlier; continuing from its last checkpoint"
    if stage.kind.trains:
        return "run", f"{what} earlier, before its first checkpoint"
    return "run", f"{what} earlier"
