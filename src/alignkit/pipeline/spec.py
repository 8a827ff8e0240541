"""A pipeline file, resolved: overrides applied, references expanded, every stage validated.

The file is YAML::

    output_dir: runs/demo     # where the pipeline directory goes
    seed: 0                   # ${seed} anywhere in a stage is replaced by it
    stages:                   # stage name -> settings, run in this order
      lab:
        kind: lab-data
        seed: ${seed}
      sft:
        kind: sft
        data:
          train: ${lab}/sft.jsonl

``${NAME}`` (NAME an earlier stage) becomes that stage's directory,
``OUTPUT_DIR/NAME``; ``${seed}`` becomes the seed (a number when it is the whole
value). ``kind`` may be left out when the stage's name is a kind. A training
stage's ``output_dir`` is set here and may not be given. Every problem in
every stage is found before anything runs and reported in one
:class:`~alignkit.errors.ConfigError` naming the file, the stage and the key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from alignkit.config import Section, validate_config
from alignkit.errors import AlignkitError, ConfigError
from alignkit.overrides import apply_overrides, dump_yaml, format_value, read_yaml_file
from alignkit.pipeline.references import (
    SEED,
    Scope,
    Where,
    did_you_mean,
    expand,
    flow_reference_hint,
)
from alignkit.pipeline.stages import KINDS, StageKind

STAGE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class PipelineFile(Section):
    """The top level of a pipeline file."""

    output_dir: str | None = Field(None, description=(
        "Where the pipeline directory goes; default runs/<the file's name without .yaml>."))
    seed: int = Field(0, ge=0, description="Replaces ${seed} anywhere in the stages.")
    stages: dict[str, Any] = Field(description=(
        "Stage name -> its settings (kind plus the kind's own configuration), in run order."))


@dataclass(frozen=True)
class Stage:
    """One resolved stage.

    Attributes:
        name: the stage's name, also its directory under the pipeline directory.
        kind: its :class:`~alignkit.pipeline.stages.StageKind`.
        config: its validated configuration (defaults included).
        uses: the earlier stages it refers to with ``${NAME}``, in order.
        directory: ``OUTPUT_DIR/NAME``.
    """

    name: str
    kind: StageKind
    config: Section
    uses: tuple[str, ...]
    directory: Path


@dataclass(frozen=True)
class Pipeline:
    """A resolved pipeline file.

    Attributes:
        source: the pipeline file.
        output_dir: the pipeline directory.
        seed: the value of ``${seed}``.
        stages: the stages in run order.
    """

    source: Path
    output_dir: Path
    seed: int
    stages: tuple[Stage, ...]

    def names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def dependents(self, name: str) -> list[str]:
        """The stages that use ``name``'s output, directly or through others, in run order."""
        reached = {name}
        for stage in self.stages:
            if reached.intersection(stage.uses):
                reached.add(stage.name)
        return [s.name for s in self.stages if s.name in reached and s.name != name]

    def check_names(self, names: Sequence[str], option: str) -> None:
        """Raise a ConfigError unless every one of ``names`` is a stage (for ``--rerun``...)."""
        for name in names:
            if name not in self.names():
                raise ConfigError(f"{option} {name}: no such stage in {self.source}"
                                  f"{did_you_mean(name, self.names())}; stages: "
                                  f"{', '.join(self.names())}")

    def resolved_text(self) -> str:
        """``pipeline.yaml``: references expanded, every stage's full configuration."""
        stages = {s.name: {"kind": s.kind.name, **s.config.model_dump(mode="json")}
                  for s in self.stages}
        head = f"# Resolved from {self.source}: references expanded, every default filled in.\n"
        return head + dump_yaml({"output_dir": self.output_dir.as_posix(), "seed": self.seed,
                                 "stages": stages})


def load_pipeline(path: str | Path, overrides: Sequence[str] = (),
                  output_dir: str | Path | None = None) -> Pipeline:
    """Read, override, expand and validate a pipeline file.

    Args:
        path: the pipeline YAML file.
        overrides: ``KEY=VALUE`` on the whole document (``seed=3``,
            ``stages.dpo.loss.beta=0.2``), applied left to right.
        output_dir: replaces the file's ``output_dir`` (the ``--output`` option).

    Raises:
        ConfigError: every problem found, each naming the stage and the key.
    """
    path = Path(path)
    try:
        data, origins = read_yaml_file(path)
    except ConfigError as exc:
        raise ConfigError(str(exc) + flow_reference_hint(path, str(exc))) from None
    apply_overrides(data, overrides, origins)
    try:
        top = validate_config(PipelineFile, data, origins)
    except ConfigError as exc:
        raise ConfigError(f"pipeline {path}: {exc}") from None
    out = Path(output_dir if output_dir is not None else top.output_dir or f"runs/{path.stem}")
    problems: list[str] = []
    stages: list[Stage] = []
    earlier: dict[str, str] = {}
    names = list(top.stages)
    for name, settings in top.stages.items():
        directory = out / name
        try:
            stages.append(_stage(name, settings, directory, Scope(top.seed, earlier, names),
                                 _under(origins, f"stages.{name}.")))
        except AlignkitError as exc:
            problems.append(f"stage '{name}': {_indented(str(exc))}")
        earlier[name] = directory.as_posix()
    if not top.stages:
        problems.append("'stages' is empty; a pipeline needs at least one stage")
    if problems:
        count = f" ({len(problems)} stages with problems)" if len(problems) > 1 else ""
        raise ConfigError(f"pipeline {path}{count}:\n" + "\n".join(f"- {p}" for p in problems))
    return Pipeline(path, out, top.seed, tuple(stages))


def _stage(name: str, settings: Any, directory: Path, scope: Scope,
           origins: dict[str, str]) -> Stage:
    if not STAGE_NAME.fullmatch(name):
        raise ConfigError(f"'{name}' is not a stage name: use lowercase letters, digits, '_' "
                          "and '-', starting with a letter or digit")
    if name == SEED:
        raise ConfigError("'seed' cannot name a stage: ${seed} is the pipeline's seed")
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise ConfigError(f"the settings must be a mapping of keys to values, found "
                          f"{format_value(settings)}")
    settings = dict(settings)
    kind = _kind(name, settings.pop("kind", None))
    if kind.trains and "output_dir" in settings:
        raise ConfigError(f"output_dir = {format_value(settings['output_dir'])}: the pipeline "
                          f"sets it ({directory.as_posix()}); remove it")
    uses: list[str] = []
    expanded = expand(settings, "", Where(scope, origins, name), uses)
    if kind.trains:
        expanded["output_dir"] = directory.as_posix()
    cfg = validate_config(kind.schema, expanded, origins)
    kind.check(cfg)
    return Stage(name, kind, cfg, tuple(dict.fromkeys(uses)), directory)


def _kind(name: str, given: Any) -> StageKind:
    listed = ", ".join(KINDS)
    if given is None:
        if name in KINDS:
            return KINDS[name]
        raise ConfigError(f"kind is required (the name '{name}' is not a kind); one of {listed}")
    if not isinstance(given, str) or given not in KINDS:
        raise ConfigError(f"kind = {format_value(given)}: unknown kind"
                          f"{did_you_mean(str(given), list(KINDS))}; kinds: {listed}")
    return KINDS[given]


def _under(origins: dict[str, str], prefix: str) -> dict[str, str]:
    return {key[len(prefix):]: where for key, where in origins.items() if key.startswith(prefix)}


def _indented(text: str) -> str:
    return text.replace("\n", "\n  ")
