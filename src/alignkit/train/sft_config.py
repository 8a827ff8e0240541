"""Configuration of ``alignkit sft`` (kept apart from the loop so the CLI starts fast)."""

from __future__ import annotations

from pydantic import Field

from alignkit.train.settings import (
    DataSettings,
    ModelSettings,
    OfflineConfig,
    OfflineOptimSettings,
    PeftSettings,
    TrainSettings,
)


class SFTData(DataSettings):
    """SFT data: prompt/completion rows or whole conversations."""

    packing: bool = Field(False, description=(
        "Pack several short examples into each row of max_length tokens (fewer pad tokens)."))


class SFTConfig(OfflineConfig):
    """Configuration of ``alignkit sft``."""

    output_dir: str = Field("runs/sft", description="Run directory to create.")
    model: ModelSettings
    peft: PeftSettings = Field(default_factory=PeftSettings)
    data: SFTData
    optim: OfflineOptimSettings = Field(default_factory=lambda: OfflineOptimSettings(lr=2e-5))
    train: TrainSettings = Field(default_factory=TrainSettings)
