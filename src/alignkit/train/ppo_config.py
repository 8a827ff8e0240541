"""Configuration of ``alignkit ppo`` (pydantic only, for a fast CLI).

PPO as in Ziegler et al. 2019 and Ouyang et al. 2022: a policy, a frozen
reference, a reward and a value model; the reward of a response is its score
at the last token minus ``kl_coef · KL`` at every token; GAE advantages; a
clipped surrogate. ``constraint`` adds a cost model and a Lagrange multiplier
(Safe-RLHF).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from alignkit.config import Section
from alignkit.train.online_config import (
    REWARD_SOURCE_HELP,
    OnlineTrainSettings,
    PromptData,
    RewardSettings,
    RLAlarmSettings,
    RLOptimisation,
    RolloutSettings,
)
from alignkit.train.settings import ModelSettings, OptimSettings, PeftSettings


class KLControl(Section):
    """The per-token KL penalty towards the reference and its coefficient's controller."""

    controller: Literal["adaptive", "fixed"] = Field("adaptive", description=(
        "adaptive: steer the measured KL towards kl.target (Ziegler et al. 2019); fixed: keep "
        "kl.init_coef."))
    init_coef: float = Field(0.05, ge=0, description="Starting (or fixed) coefficient.")
    target: float | None = Field(6.0, gt=0, description=(
        "KL per response (nats, summed over its tokens) the adaptive controller aims for."))
    horizon: float = Field(10000, gt=0, description=(
        "Responses over which a full-sized error changes the coefficient by about 20%."))
    warmup: int = Field(0, ge=0, description=(
        "adaptive: responses over which init_coef is held unless a batch's KL reaches 80% of "
        "kl.target first, so the near-zero KL of a run's first batches does not wind the "
        "coefficient down; 0 moves it from the first batch (Ziegler's rule)."))
    estimator: Literal["k1", "k2", "k3", "abs"] = Field("k1", description=(
        "Per-token KL estimator of the penalty: k1 = log-ratio (unbiased), k2 = ½ log-ratio², "
        "k3 = exp(-log-ratio) + log-ratio - 1 (unbiased, never negative), abs = |log-ratio|."))

    @model_validator(mode="after")
    def _target_for_adaptive(self):
        if self.controller == "adaptive" and self.target is None:
            raise ValueError("kl.controller adaptive needs kl.target")
        return self


class PPOUpdate(RLOptimisation):
    """How one rollout batch updates the policy and the value model."""

    epochs: int = Field(4, gt=0, description="PPO epochs over each rollout batch.")
    minibatches: int = Field(4, gt=0, description="Optimiser updates per epoch.")
    max_approx_kl: float | None = Field(0.1, gt=0, description=(
        "Stop updating on a batch once a minibatch's approximate KL between the sampling "
        "policy and the updated one exceeds this (nats per token); null never stops."))
    gamma: float = Field(1.0, ge=0, le=1, description="Discount γ of GAE.")
    lam: float = Field(0.95, ge=0, le=1, description="GAE λ.")
    whiten_advantages: bool = Field(True, description=(
        "Standardise advantages over the batch's response tokens."))


class ValueSettings(Section):
    """The value model (critic)."""

    model: Literal["shared", "separate"] = Field("shared", description=(
        "shared: a zero-initialised scalar head on the policy's last hidden state (one forward "
        "pass, the backbone learns from both losses); separate: its own backbone, loaded from "
        "value.path, with a zero-initialised head (twice the weights)."))
    path: str | None = Field(None, description=(
        "separate: model or run directory of the critic's backbone (a reward model's is a good "
        "start); default the policy's starting model."))
    coef: float = Field(0.1, ge=0, description="Weight of the value loss.")
    clip: float = Field(0.2, gt=0, description="Value clipping range around the old values.")


class ConstraintSettings(Section):
    """Cost-constrained RL (Safe-RLHF): maximise reward subject to mean cost <= threshold."""

    cost: str | None = Field(None, description=(
        "Where costs come from (higher is more harmful), like reward.source; null disables "
        "the constraint. " + REWARD_SOURCE_HELP.split(": ", 1)[1]))
    batched: bool = Field(False, description="With fn:, call the cost function once per batch.")
    threshold: float = Field(0.0, description="The limit on the mean cost of a response.")
    lambda_init: float = Field(1.0, gt=0, description="Starting Lagrange multiplier λ.")
    lambda_lr: float = Field(0.05, gt=0, description=(
        "Step size of ln λ ← ln λ + lr · λ · (mean cost - threshold)."))
    max_lambda: float | None = Field(None, gt=0, description="Upper bound on λ.")


class PPOConfig(Section):
    """Configuration of ``alignkit ppo``."""

    output_dir: str = Field("runs/ppo", description="Run directory to create.")
    model: ModelSettings = Field(description=(
        "The policy to train (usually an SFT run); the reference starts equal to it."))
    peft: PeftSettings = Field(default_factory=PeftSettings, description=(
        "LoRA adapters; the reference is then the policy with its adapter switched off."))
    data: PromptData = Field(description="The prompts.")
    reward: RewardSettings = Field(description="The score of each response.")
    rollout: RolloutSettings = Field(default_factory=RolloutSettings, description=(
        "Sampling of responses."))
    kl: KLControl = Field(default_factory=KLControl, description=(
        "KL penalty and its controller."))
    update: PPOUpdate = Field(default_factory=PPOUpdate, description=(
        "PPO epochs, minibatches, clipping, GAE."))
    value: ValueSettings = Field(default_factory=ValueSettings, description="The critic.")
    constraint: ConstraintSettings = Field(default_factory=ConstraintSettings, description=(
        "Optional cost constraint."))
    alarms: RLAlarmSettings = Field(default_factory=RLAlarmSettings, description=(
        "Reward-hacking and collapse alarms."))
    optim: OptimSettings = Field(default_factory=lambda: OptimSettings(lr=1e-6), description=(
        "AdamW and its learning-rate schedule (warm-up and decay count iterations)."))
    train: OnlineTrainSettings = Field(default_factory=OnlineTrainSettings, description=(
        "Iterations, precision and bookkeeping."))
