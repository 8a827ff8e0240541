"""Config sections shared by the online RL commands (``ppo``, ``rloo``, ``grpo``).

Kept to pydantic only, so that ``alignkit --help`` stays fast. One *iteration*
of an online run samples responses to ``train.prompts_per_iteration`` prompts,
scores them, and updates the policy on them; the learning-rate schedule,
``log_every``, ``save_every`` and ``max_iterations`` all count iterations.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Literal

from pydantic import Field

from alignkit.config import Section
from alignkit.train.settings import PLAN_HELP, TRACKERS_HELP, Tracker

REWARD_SOURCE_HELP = (
    "Where scores come from: a reward-model run directory or model directory (the score is "
    "read at the last real token of prompt + response, rendered with the reward model's "
    "tokenizer); fn:module:function or fn:FILE.py:function, a Python function "
    "(prompt, response) -> float (see "
    "reward.batched); or gold, the lab's programmatic gold reward.")


class PromptData(Section):
    """The prompts rollouts start from."""

    train: str = Field(description=(
        "Data file or datasets directory with a prompt column (text or a conversation); other "
        "columns (chosen, completion, ...) are ignored, so SFT or pair files work as they are."))
    format: Literal["jsonl", "json", "csv", "parquet", "hf"] | None = Field(None, description=(
        "File format; detected from the suffix when not given."))
    prompt_field: str = Field("prompt", description="Column holding the prompt.")
    mode: Literal["strict", "skip"] = Field("strict", description=(
        "strict: stop at the first bad rows and list them; skip: drop them and count them in "
        "events.jsonl."))
    max_prompt_length: int = Field(256, gt=0, description=(
        "Longest prompt in tokens; longer prompts keep their end."))


class RewardSettings(Section):
    """The score each response gets, and how it is shaped before training."""

    source: str = Field(description=REWARD_SOURCE_HELP)
    batched: bool = Field(False, description=(
        "With fn:: call the function once per batch as f(prompts, responses) -> list of "
        "floats, instead of once per response."))
    batch_size: int = Field(32, gt=0, description="Sequences per reward-model forward pass.")
    missing_eos_penalty: float | None = Field(None, ge=0, description=(
        "Subtracted from the score of a response that hit max_new_tokens without ending."))
    normalize: bool = Field(False, description=(
        "Standardise scores with running mean and standard deviation over all iterations."))
    clip: float | None = Field(None, gt=0, description=(
        "Clip scores (after normalisation) to [-clip, clip]."))
    log_gold: bool = Field(False, description=(
        "Also log the lab's gold score of every response (gold_score), when the reward is a "
        "proxy such as a small reward model; needed for the over-optimisation alarm."))


class RolloutSettings(Section):
    """How responses are sampled."""

    max_new_tokens: int = Field(64, gt=0, description="Longest response, in tokens.")
    temperature: float = Field(1.0, gt=0, description=(
        "Sampling temperature; the policy trained is softmax(logits / temperature), the "
        "reference is scaled the same way."))
    top_p: float = Field(1.0, gt=0, le=1, description=(
        "Nucleus sampling; below 1 the sampled tokens no longer follow the policy exactly."))


class OnlineTrainSettings(Section):
    """Iterations, precision and bookkeeping of an online run."""

    prompts_per_iteration: int = Field(16, gt=0, description=(
        "Prompts sampled per iteration per process (each gets rollout.k responses for rloo "
        "and grpo, one for ppo)."))
    epochs: int = Field(1, gt=0, description="Passes over the prompts.")
    max_iterations: int | None = Field(None, gt=0, description=(
        "Stop after this many iterations (overrides epochs)."))
    micro_batch_size: int | None = Field(None, gt=0, description=(
        "Sequences per forward pass inside an update (gradient accumulation); default: the "
        "whole minibatch at once."))
    seed: int = Field(0, ge=0, description="Seeds initialisation, prompt order and sampling.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description=(
        "Compute precision: bf16 runs matmuls under autocast."))
    log_every: int = Field(1, gt=0, description="Write a metrics row every N iterations.")
    save_every: int = Field(50, gt=0, description="Write a checkpoint every N iterations.")
    keep_last: int = Field(2, gt=0, description="Checkpoints kept on disk.")
    nan_abort_after: int = Field(5, gt=0, description=(
        "Stop after this many consecutive updates with a NaN/Inf loss or gradient."))
    plan: bool = Field(True, description=PLAN_HELP)
    trackers: list[Tracker] = Field(default_factory=list, description=TRACKERS_HELP)


class RLAlarmSettings(Section):
    """Reward-hacking and collapse alarms, written to events.jsonl and the console."""

    enabled: bool = Field(True, description="Watch the run and raise alarms.")
    window: int = Field(5, gt=0, description="Iterations averaged by each check.")
    kl_multiple: float = Field(2.0, gt=1, description=(
        "Alarm when the mean KL of the window exceeds this multiple of kl.target (ppo)."))
    negative_kl: float = Field(0.05, ge=0, description=(
        "Alarm when the window's mean unbiased (k1) KL estimate is below minus this many "
        "nats: the sampling policy is not the policy being scored."))
    gold_window: int = Field(10, gt=2, description=(
        "Alarm when, over this many iterations, the proxy score trends up while the gold "
        "score trends down (needs reward.log_gold)."))
    length_growth: float = Field(2.0, gt=1, description=(
        "Alarm when the window's mean response length exceeds this multiple of the first "
        "window's, or most responses hit max_new_tokens."))
    entropy_drop: float = Field(0.25, gt=0, lt=1, description=(
        "Alarm when the window's mean entropy falls below this share of the first window's."))


class RLOptimisation(Section):
    """How one rollout batch updates the policy."""

    epochs: int = Field(1, gt=0, description=(
        "Passes over each rollout batch; above 1 the clipped ratio keeps updates close to the "
        "sampling policy."))
    minibatches: int = Field(1, gt=0, description="Optimiser updates per pass.")
    clip_eps: float = Field(0.2, gt=0, description="PPO ratio clipping ε.")
    max_approx_kl: float | None = Field(None, gt=0, description=(
        "Stop updating on a batch once a minibatch's approximate KL between the sampling "
        "policy and the updated one exceeds this (nats per token)."))


def engine_settings(train: OnlineTrainSettings) -> SimpleNamespace:
    """The engine's view of ``train``: one engine step per iteration, a batch of prompts."""
    return SimpleNamespace(
        batch_size=train.prompts_per_iteration, grad_accum=1, epochs=train.epochs,
        max_steps=train.max_iterations, seed=train.seed, precision=train.precision,
        log_every=train.log_every, eval_every=0, save_every=train.save_every,
        keep_last=train.keep_last, nan_abort_after=train.nan_abort_after,
        trackers=train.trackers)
