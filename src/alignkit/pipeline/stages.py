"""What each stage kind of a pipeline is: its configuration schema and how it runs.

:data:`KINDS` maps a kind name (``sft``, ``lab-data``...) to a :class:`StageKind`.
A kind knows its schema, runs into a directory, and tells whether that
directory holds its finished output or an interrupted run it can continue.

Training kinds take the configuration of their command (``alignkit sft``,
``rm``, ``dpo``, ``ppo``, ``rloo``, ``grpo``) and write an ordinary run
directory; the runner sets their ``output_dir``. Heavy modules are imported
only when a stage runs, so resolving and validating a pipeline stays fast.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field

from alignkit.config import Section
from alignkit.rundir import RunDir, is_run_dir

TrainFunction = Callable[[Section, RunDir], object]


class LabDataConfig(Section):
    """A ``lab-data`` stage: the lab's datasets and model directory (``alignkit lab generate``)."""

    seed: int = Field(0, ge=0, description="Seeds everything generated: the same seed gives "
                                           "the same bytes.")
    size: Literal["small", "default"] = Field("default", description=(
        "small for tests, default for the demo (row counts: alignkit.lab.datasets.SIZES)."))
    tokenizer: Literal["word", "bpe"] = Field("word", description=(
        "word: one token per lab word; bpe: byte-level BPE."))


class StageKind(ABC):
    """A stage kind. Subclasses set :attr:`name` and :attr:`summary` and override the methods.

    Attributes:
        name: the kind as written in a pipeline file.
        summary: one line for help texts.
        trains: whether the stage is a training run; the runner then sets its
            ``output_dir`` and may resume it from a checkpoint.
    """

    name: str = ""
    summary: str = ""
    trains: bool = False

    @property
    @abstractmethod
    def schema(self) -> type[Section]:
        """The stage's configuration model."""

    def check(self, cfg: Section) -> None:
        """Refuse settings the schema accepts but the stage cannot run (a ConfigError)."""
        return None  # most kinds accept whatever their schema accepts

    @abstractmethod
    def run(self, cfg: Section, out_dir: Path, resume: bool) -> None:
        """Run the stage into ``out_dir`` (continuing an interrupted run when ``resume``)."""

    @abstractmethod
    def finished(self, out_dir: Path) -> bool:
        """Whether ``out_dir`` holds this stage's complete output."""

    def resumable(self, out_dir: Path) -> bool:
        """Whether ``out_dir`` holds an interrupted run this stage can continue."""
        return False


class LabDataKind(StageKind):
    """Generate the lab (``alignkit lab generate``); ``lab.json`` is written last."""

    name = "lab-data"
    summary = "the lab's synthetic datasets and model directory"

    @property
    def schema(self) -> type[Section]:
        return LabDataConfig

    def run(self, cfg: LabDataConfig, out_dir: Path, resume: bool) -> None:
        from alignkit.lab.datasets import generate_lab

        generate_lab(out_dir, seed=cfg.seed, size=cfg.size, tokenizer=cfg.tokenizer)

    def finished(self, out_dir: Path) -> bool:
        return (out_dir / "lab.json").is_file()


class TrainingKind(StageKind):
    """A training command's stage: its schema, and its train function (``module:function``)."""

    trains = True

    def __init__(self, name: str, summary: str, schema: type[Section], train: str,
                 *, method: str | None = None,
                 check: Callable[[Section], object] | None = None) -> None:
        self.name, self.summary = name, summary
        self._schema, self._train, self._method, self._check = schema, train, method, check

    @property
    def schema(self) -> type[Section]:
        return self._schema

    def check(self, cfg: Section) -> None:
        if self._check is not None:
            self._check(cfg)

    def run(self, cfg: Section, out_dir: Path, resume: bool) -> None:
        from alignkit.train.commands import open_run

        module, _, function = self._train.partition(":")
        train = getattr(importlib.import_module(module), function)
        run = open_run(cfg, self.name, overwrite=False, resume=resume)
        if self._method is None:
            train(cfg, run)
        else:
            train(cfg, run, self._method)

    def finished(self, out_dir: Path) -> bool:
        return is_run_dir(out_dir) and RunDir(out_dir).finished

    def resumable(self, out_dir: Path) -> bool:
        # A run killed before its first checkpoint has nothing to continue from: resuming it
        # would start again from step 0 beside the metrics rows it had already logged.
        return is_run_dir(out_dir) and RunDir(out_dir).latest_checkpoint() is not None


class EvalKind(StageKind):
    """Evaluate the pipeline's policies and reward models (``alignkit.pipeline.eval_stage``)."""

    name = "eval"
    summary = "policies compared with a baseline, reward models against gold"

    @property
    def schema(self) -> type[Section]:
        from alignkit.pipeline.eval_stage import EvalStageConfig

        return EvalStageConfig

    def run(self, cfg: Section, out_dir: Path, resume: bool) -> None:
        from alignkit.pipeline.eval_stage import run_eval_stage

        run_eval_stage(cfg, out_dir)

    def finished(self, out_dir: Path) -> bool:
        from alignkit.pipeline.report_results import EVALUATION_FILE

        path = out_dir / EVALUATION_FILE
        try:
            return isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
        except (OSError, ValueError):
            return False


def _dpo_check(cfg: Section) -> None:
    from alignkit.train.dpo_config import reference_mode

    reference_mode(cfg)


def _training_kinds() -> list[StageKind]:
    from alignkit.train.dpo_config import DPOConfig
    from alignkit.train.group_config import GRPOConfig, RLOOConfig
    from alignkit.train.ppo_config import PPOConfig
    from alignkit.train.rm_config import RMConfig
    from alignkit.train.sft_config import SFTConfig

    return [
        TrainingKind("sft", "supervised fine-tuning (alignkit sft)", SFTConfig,
                     "alignkit.train.sft:train_sft"),
        TrainingKind("rm", "a reward model (alignkit rm)", RMConfig,
                     "alignkit.train.reward:train_reward_model"),
        TrainingKind("dpo", "DPO and its family (alignkit dpo)", DPOConfig,
                     "alignkit.train.preference:train_dpo", check=_dpo_check),
        TrainingKind("ppo", "online RL with PPO (alignkit ppo)", PPOConfig,
                     "alignkit.train.ppo:train_ppo"),
        TrainingKind("rloo", "online RL with RLOO (alignkit rloo)", RLOOConfig,
                     "alignkit.train.group:train_group", method="rloo"),
        TrainingKind("grpo", "online RL with GRPO (alignkit grpo)", GRPOConfig,
                     "alignkit.train.group:train_group", method="grpo"),
    ]


KINDS: dict[str, StageKind] = {kind.name: kind
                               for kind in [LabDataKind(), *_training_kinds(), EvalKind()]}
"""Kind name -> kind, in the order help texts list them."""
