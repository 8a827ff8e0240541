"""What a report shows, read from a pipeline or run directory into plain dataclasses.

Nothing here draws or formats: :func:`read_pipeline` and
:func:`read_training_run` turn ``pipeline.json``, each stage's
``metrics.jsonl`` and ``events.jsonl``, and the eval stage's results
(:mod:`~alignkit.pipeline.report_results`) into data the report sections
take. A part that is absent is ``None`` (or empty), so the report can say
what the run lacks instead of failing; a part that is present but malformed
is a :class:`~alignkit.errors.DataError` naming file and field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignkit.errors import DataError
from alignkit.pipeline.report_results import (
    EVALUATION_FILE,
    Evaluation,
    Sample,
    read_evaluation,
    read_json,
    read_samples,
)
from alignkit.rundir import RunDir, is_run_dir, read_events, read_metrics

PIPELINE_FILE = "pipeline.json"
# "online" is the kind of a lone run directory that logged rollout scores: its config.yaml
# does not say whether ppo, rloo or grpo wrote it.
ONLINE_KINDS = ("ppo", "rloo", "grpo", "online")
# The figures worth watching for each kind of training run, in the order drawn.
CURVE_KEYS = {
    "sft": ("loss", "eval_loss"),
    "rm": ("loss", "accuracy", "eval_accuracy"),
    "dpo": ("loss", "reward_margin", "reward_accuracy", "eval_reward_accuracy"),
    **{kind: ("score", "gold_score", "kl", "kl_coef", "entropy") for kind in ONLINE_KINDS},
}
TRAINING_KINDS = tuple(CURVE_KEYS)


@dataclass(frozen=True)
class Stage:
    """One row of ``pipeline.json``."""

    name: str
    kind: str
    status: str
    seconds: float | None


@dataclass
class TrainingRun:
    """The logged history of one training run.

    Attributes:
        name: the stage name (or the run directory's name).
        kind: sft, rm, dpo, ppo, rloo or grpo; for a lone run directory,
            guessed from the keys it logged (:func:`guess_kind`).
        series: every numeric metric as ``(step, value)`` points, finite values only.
        events: the rows of ``events.jsonl`` (warnings, alarms, resumes).
    """

    name: str
    kind: str
    series: dict[str, list[tuple[int, float]]]
    events: list[dict[str, Any]]

    def chosen_keys(self) -> list[str]:
        """The kind's figures that were logged; else every logged key with "loss" in it."""
        chosen = [k for k in CURVE_KEYS.get(self.kind, ()) if self.series.get(k)]
        return chosen or [k for k in self.series if "loss" in k and self.series[k]]

    @property
    def steps(self) -> int:
        """The last step logged (0 when nothing was)."""
        return max((points[-1][0] for points in self.series.values() if points), default=0)


@dataclass
class PipelineData:
    """Everything a pipeline report shows."""

    directory: Path
    stages: list[Stage]
    runs: dict[str, TrainingRun | None] = field(default_factory=dict)
    evaluation: Evaluation | None = None
    samples: list[Sample] | None = None
    pipeline_yaml: str | None = None


def read_training_run(path: Path, name: str, kind: str | None = None) -> TrainingRun:
    """A run directory's metrics and events; ``kind`` is guessed from the metrics when ``None``."""
    series: dict[str, list[tuple[int, float]]] = {}
    for row in read_metrics(path):
        step = row.get("step")
        if not isinstance(step, int):
            continue
        for key, value in row.items():
            if key in ("step", "time") or isinstance(value, bool):
                continue
            if isinstance(value, int | float) and math.isfinite(value):
                series.setdefault(key, []).append((step, float(value)))
    events = read_events(path) if (path / RunDir.EVENTS).is_file() else []
    return TrainingRun(name, kind or guess_kind(series), series, events)


def guess_kind(series: dict[str, Any]) -> str:
    """The training kind whose characteristic metric a run logged (config.yaml does not say)."""
    if "score" in series or "kl_coef" in series:
        return "online"
    if "reward_margin" in series or "reward_accuracy" in series:
        return "dpo"
    if "accuracy" in series or "eval_accuracy" in series:
        return "rm"
    return "sft"


def read_stages(path: Path) -> list[Stage]:
    """The stages listed in ``pipeline.json``."""
    document = read_json(path)
    rows = document.get("stages") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise DataError("bad_pipeline", "expected an object with a 'stages' list",
                        source=str(path), field="stages")
    stages = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise DataError("bad_stage", "each stage must be an object with a 'name'",
                            source=str(path), field=f"stages[{index}]")
        seconds = row.get("seconds")
        stages.append(Stage(row["name"], str(row.get("kind", row["name"])),
                            str(row.get("status", "unknown")),
                            float(seconds) if isinstance(seconds, int | float) else None))
    return stages


def read_pipeline(directory: Path) -> PipelineData:
    """A pipeline directory: its stages, training histories, evaluation and samples."""
    data = PipelineData(directory, read_stages(directory / PIPELINE_FILE))
    for stage in data.stages:
        if stage.kind in TRAINING_KINDS:
            stage_dir = directory / stage.name
            data.runs[stage.name] = (read_training_run(stage_dir, stage.name, stage.kind)
                                     if is_run_dir(stage_dir) else None)
    evaluation_dirs = [directory / s.name for s in data.stages if s.kind == "eval"]
    for eval_dir in reversed(evaluation_dirs or [directory / "eval"]):
        if (eval_dir / EVALUATION_FILE).is_file():
            data.evaluation = read_evaluation(eval_dir / EVALUATION_FILE)
            break
    if data.evaluation is not None and data.evaluation.samples_file is not None:
        data.samples = read_samples(data.evaluation.samples_file)
    if (directory / "pipeline.yaml").is_file():
        data.pipeline_yaml = (directory / "pipeline.yaml").read_text(encoding="utf-8")
    return data


