"""Configuration of ``alignkit dpo`` (kept apart from the loop so the CLI starts fast).

``loss`` is a discriminated union on ``loss.type``: each objective has its own
keys, so an option the chosen loss does not take (``loss.type=ipo
loss.beta=0.1``) is an error that names it. :func:`reference_mode` settles
``reference.mode: auto`` and refuses combinations that make no sense.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from alignkit.config import Section
from alignkit.errors import ConfigError
from alignkit.train.settings import (
    DataSettings,
    ModelSettings,
    OfflineConfig,
    OfflineOptimSettings,
    PeftSettings,
    TrainSettings,
)

_BETA = "Strength of the implicit KL penalty towards the reference (the implicit reward scale)."


_SFT_WEIGHT = (
    "Weight α of a supervised term on the chosen response, α · (-log π(y_c|x)) / |y_c| per pair "
    "(RPO, Pang et al. 2024): it keeps the chosen response likely, which stops the "
    "policy drifting into text that never ends. 0 turns it off.")


class ChosenNLL(Section):
    """Pair losses with a reference may add a length-normalised NLL term on the chosen response."""

    sft_weight: float = Field(0.0, ge=0, description=_SFT_WEIGHT)


class DPOLoss(ChosenNLL):
    """DPO: ``-log σ(β h)`` with ``h = (π_c - ref_c) - (π_r - ref_r)`` (Rafailov et al. 2023)."""

    type: Literal["dpo"] = Field("dpo", description="The objective.")
    beta: float = Field(0.1, gt=0, description=_BETA)


class CDPOLoss(ChosenNLL):
    """Conservative DPO: DPO with labels taken as flipped with probability ε."""

    type: Literal["cdpo"] = Field(description="The objective.")
    beta: float = Field(0.1, gt=0, description=_BETA)
    label_smoothing: float = Field(0.1, ge=0, le=0.5, description=(
        "Assumed share of flipped labels ε; 0 is plain DPO."))


class RobustLoss(ChosenNLL):
    """Robust DPO: an unbiased DPO loss under labels flipped with probability ε."""

    type: Literal["robust"] = Field(description="The objective.")
    beta: float = Field(0.1, gt=0, description=_BETA)
    label_smoothing: float = Field(0.1, ge=0, lt=0.5, description=(
        "Assumed share of flipped labels ε (below 0.5); 0 is plain DPO."))


class IPOLoss(ChosenNLL):
    """IPO: ``(h - 1/(2τ))²`` on length-averaged log-probs (Azar et al. 2023)."""

    type: Literal["ipo"] = Field(description="The objective.")
    tau: float = Field(0.1, gt=0, description=(
        "Regularisation τ; the log-ratio gap is pulled towards 1/(2τ)."))


class HingeLoss(ChosenNLL):
    """SLiC hinge: ``max(0, 1 - β h)``."""

    type: Literal["hinge"] = Field(description="The objective.")
    beta: float = Field(0.1, gt=0, description="Inverse margin: the loss is 0 once h >= 1/β.")


class SimPOLoss(Section):
    """SimPO: ``-log σ(β avg_c - β avg_r - γ)``, no reference (Meng et al. 2024)."""

    type: Literal["simpo"] = Field(description="The objective.")
    beta: float = Field(2.0, gt=0, description="Scale of the length-averaged log-prob reward.")
    gamma: float = Field(1.0, description="Target reward margin γ (in reward units).")


class ORPOLoss(Section):
    """ORPO: SFT on the chosen response plus λ times an odds-ratio term, no reference."""

    type: Literal["orpo"] = Field(description="The objective.")
    lam: float = Field(0.1, ge=0, description="Weight λ of the odds-ratio term.")


class RRHFLoss(Section):
    """RRHF: rank k scored responses per prompt, plus SFT on the best one; no reference."""

    type: Literal["rrhf"] = Field(description="The objective (it has no other options).")


class KTOLoss(Section):
    """KTO: unpaired desirable/undesirable examples (Ethayarajh et al. 2024)."""

    type: Literal["kto"] = Field(description="The objective.")
    beta: float = Field(0.1, gt=0, description=_BETA)
    desirable_weight: float = Field(1.0, gt=0, description=(
        "Weight of desirable examples (raise it when they are the minority)."))
    undesirable_weight: float = Field(1.0, gt=0, description="Weight of undesirable examples.")


LossSettings = Annotated[
    DPOLoss | CDPOLoss | RobustLoss | IPOLoss | HingeLoss | SimPOLoss | ORPOLoss | RRHFLoss
    | KTOLoss,
    Field(discriminator="type"),
]

REFERENCE_FREE = frozenset({"simpo", "orpo", "rrhf"})
"""Losses that need no reference policy."""

DATA_KIND = {"rrhf": "ranked", "kto": "unpaired"}
"""The data kind of each loss that does not train on preference pairs."""


def data_kind(loss_type: str) -> str:
    """``pairs``, or ``ranked`` for RRHF, or ``unpaired`` for KTO."""
    return DATA_KIND.get(loss_type, "pairs")


class ReferenceSettings(Section):
    """Where the reference policy's log-probabilities come from."""

    mode: Literal["auto", "precomputed", "adapter", "copy", "none"] = Field("auto", description=(
        "precomputed: one no-grad pass over the data before training, cached in the run "
        "directory; adapter: the policy with its LoRA adapter switched off; copy: a frozen "
        "second model; none: for simpo, orpo and rrhf. auto: none for those, adapter with "
        "LoRA, else precomputed."))
    batch_size: int | None = Field(None, gt=0, description=(
        "Examples per forward pass when precomputing; defaults to train.batch_size."))


class AlarmSettings(Section):
    """Alarms written to events.jsonl and the console while training."""

    enabled: bool = Field(True, description="Watch the reward metrics and raise alarms.")
    margin_window: int = Field(10, gt=0, description=(
        "Steps averaged on each side when comparing the reward margin with the steps before."))
    margin_jump: float = Field(1.0, gt=0, description=(
        "Alarm when the mean margin of the last margin_window steps moves away from that of "
        "the window before (up or down) by more than this share of the earlier mean, within "
        "one epoch: a learning rate too high for beta."))
    margin_floor: float = Field(1.0, gt=0, description=(
        "Smallest earlier mean the share is taken of, so that tiny early margins do not alarm."))
    falling_window: int = Field(20, gt=1, description=(
        "Alarm when chosen and rejected rewards both fall over this many steps and the chosen "
        "reward is below -falling_floor: the chosen response is losing probability too."))
    falling_floor: float = Field(0.05, ge=0, description=(
        "How far below zero the window's mean chosen reward (beta times the log-ratio to the "
        "reference) must be before that alarm fires, so that drift within noise does not."))


class DPOConfig(OfflineConfig):
    """Configuration of ``alignkit dpo``: the offline preference family."""

    output_dir: str = Field("runs/dpo", description="Run directory to create.")
    model: ModelSettings = Field(description=(
        "The policy to train (usually an SFT run); the reference starts equal to it."))
    peft: PeftSettings = Field(default_factory=PeftSettings, description=(
        "LoRA adapters; with LoRA the reference is the policy with its adapter switched off."))
    data: DataSettings = Field(description=(
        "Pairs (prompt, chosen, rejected) for most losses; ranked sets (prompt, completions, "
        "scores) for rrhf; unpaired rows (prompt, completion, label) for kto."))
    loss: LossSettings = Field(default_factory=DPOLoss, description=(
        "The objective, chosen by loss.type; each type has its own options."))
    reference: ReferenceSettings = Field(default_factory=ReferenceSettings, description=(
        "The reference policy."))
    alarms: AlarmSettings = Field(default_factory=AlarmSettings, description=(
        "Alarms on the implicit reward metrics."))
    optim: OfflineOptimSettings = Field(
        default_factory=lambda: OfflineOptimSettings(lr=5e-7),
        description="AdamW and its learning-rate schedule (DPO wants a small learning rate).")
    train: TrainSettings = Field(default_factory=TrainSettings, description=(
        "Batching (a pair, a ranked set or an unpaired row counts as one example), "
        "precision, logging, evaluation and checkpoints."))


def reference_mode(cfg: DPOConfig) -> str:
    """The reference mode the run uses: ``reference.mode`` with ``auto`` settled.

    Raises:
        ConfigError: a reference-free loss with a reference mode, a loss that
            needs a reference with ``none``, or ``adapter`` without LoRA.
    """
    loss, mode = cfg.loss.type, cfg.reference.mode
    if loss in REFERENCE_FREE:
        if mode not in ("auto", "none"):
            raise ConfigError(
                f"reference.mode = {mode!r}: loss.type {loss!r} uses no reference policy; "
                "set reference.mode to none (or auto)")
        return "none"
    if mode == "none":
        raise ConfigError(
            f"reference.mode = 'none': loss.type {loss!r} needs a reference policy; choose "
            "auto, precomputed, adapter or copy (none is for simpo, orpo and rrhf)")
    if mode == "adapter" and not cfg.peft.enabled:
        raise ConfigError("reference.mode = 'adapter' needs LoRA (peft.enabled: true); "
                          "without it use precomputed or copy")
    if mode == "auto":
        return "adapter" if cfg.peft.enabled else "precomputed"
    return mode
