"""Configuration of ``alignkit rm`` (kept apart from the loop so the CLI starts fast)."""

from __future__ import annotations

from pydantic import Field

from alignkit.config import Section
from alignkit.train.settings import (
    DataSettings,
    ModelSettings,
    OfflineConfig,
    OfflineOptimSettings,
    PeftSettings,
    TrainSettings,
)


class RewardLossSettings(Section):
    """The Bradley-Terry objective: ``-log σ(r_c - r_r - m) + center_coef · (r_c + r_r)²``."""

    margin: bool = Field(False, description=(
        "Subtract each pair's margin (the data's 'margin' field; 0 where a row has none) "
        "from the reward gap, asking for a wider gap on clearer preferences (Llama 2)."))
    center_coef: float = Field(0.0, ge=0, description=(
        "Weight of the penalty (r_c + r_r)² that keeps rewards centred on zero; 0 disables it. "
        "Around 0.01 is common."))


class RMConfig(OfflineConfig):
    """Configuration of ``alignkit rm``: a scalar reward model trained on preference pairs."""

    output_dir: str = Field("runs/rm", description="Run directory to create.")
    model: ModelSettings
    peft: PeftSettings = Field(default_factory=PeftSettings, description=(
        "LoRA adapters; the reward head ('score') is trained in full alongside them."))
    data: DataSettings
    loss: RewardLossSettings = Field(default_factory=RewardLossSettings, description=(
        "The pairwise loss."))
    optim: OfflineOptimSettings = Field(
        default_factory=lambda: OfflineOptimSettings(lr=1e-5),
        description="AdamW and its learning-rate schedule.")
    train: TrainSettings = Field(default_factory=TrainSettings, description=(
        "Batching (a pair counts as one example), precision, logging, evaluation and "
        "checkpoints."))
