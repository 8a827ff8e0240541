"""``alignkit rloo`` and ``alignkit grpo``: critic-free policy gradient with group baselines.

An iteration reads top to bottom:

1. sample ``k`` responses to each of the iteration's prompts in one batched,
   KV-cached generation, and score them;
2. when needed, one no-grad pass for the sampling policy's log-probs (several
   updates per batch, or a KL term) and one for the reference's (a KL term);
3. with a KL term in the reward (RLOO's way), subtract ``β·Σ_t KL_t`` from
   each score;
4. advantages from the group: leave-one-out (RLOO) or standardised (GRPO),
   one per response, broadcast over its tokens;
5. updates: the clipped surrogate (with one epoch and one minibatch, plain
   policy gradient), plus ``β·KL_t`` per token when the KL is in the loss
   (GRPO's way), averaged as ``group.aggregate`` says.

Every forward pass computes the prompt its ``k`` samples share once
(:mod:`alignkit.train.prompt_sharing`).
"""

from __future__ import annotations

import torch

from alignkit.losses import GROUP_ADVANTAGES, masked_mean, ppo_policy_loss
from alignkit.train.models_setup import build_policy
from alignkit.train.online import Experience, sequence_advantages
from alignkit.train.online_forward import (
    Reference,
    disable_dropout,
    response_entropy,
    response_logits,
    response_logps,
    token_kl,
)
from alignkit.train.online_run import OnlineRun, RolloutBatch
from alignkit.train.online_update import Stats, run_updates
from alignkit.train.outputs import save_final


class GroupLoss:
    """Clipped surrogate on sequence advantages, an optional per-token KL, one aggregation.

    Args:
        clip_eps: PPO ratio clipping.
        aggregate: ``token_mean``, ``sequence_mean`` or ``sequence_sum``.
        temperature: the sampling temperature (logits are divided by it).
        kl_coef: ``β`` of a KL term in the loss (0 for none).
        kl_estimator: the per-token KL estimator of that term.
        share_prompts: compute each distinct prompt of a pass once (as the
            loop's no-grad passes do).
    """

    def __init__(self, *, clip_eps: float, aggregate: str, temperature: float,
                 kl_coef: float = 0.0, kl_estimator: str = "k3",
                 share_prompts: bool = True) -> None:
        self.clip_eps, self.aggregate, self.temperature = clip_eps, aggregate, temperature
        self.kl_coef, self.kl_estimator = kl_coef, kl_estimator
        self.share_prompts = share_prompts

    def normaliser(self, experience: Experience) -> float:
        """What the summed loss of a minibatch is divided by: its tokens or its responses."""
        if self.aggregate == "token_mean":
            return float(experience.response_mask.sum())
        return float(experience.rows)

    def __call__(self, model, part: Experience, total: float) -> tuple[torch.Tensor, Stats]:
        mask = part.response_mask
        logits, _ = response_logits(model, part.input_ids, part.attention_mask,
                                    part.response_width, temperature=self.temperature,
                                    share_prompts=self.share_prompts)
        logps = response_logps(logits, part.input_ids, mask)               # (n, R)
        old = part.old_logps if part.old_logps is not None else logps.detach()
        per_token, metrics = ppo_policy_loss(logps, old, part.advantages, mask, self.clip_eps)
        tokens = float(mask.sum())
        stats = {name: (float(value) * tokens, tokens) for name, value in metrics.items()}
        stats["policy_loss"] = (float(per_token.detach().sum()), tokens)
        if self.kl_coef and part.ref_logps is not None:
            kl = token_kl(logps, part.ref_logps, mask, self.kl_estimator)
            per_token = per_token + self.kl_coef * kl
            stats["kl_loss"] = (float(kl.detach().sum()), tokens)
        stats["entropy"] = (float(response_entropy(logits.detach(), mask).sum()), tokens)
        return aggregate(per_token, mask, self.aggregate) / total, stats


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Sum of a (n, R) per-token loss as ``how`` weighs it (divide by the normaliser after).

    ``token_mean`` and ``sequence_sum`` add every token's term; ``sequence_mean``
    first divides each row's sum by its number of tokens.
    """
    if how == "sequence_mean":
        return (per_token.sum(dim=1) / mask.sum(dim=1).clamp_min(1)).sum()
    if how in ("token_mean", "sequence_sum"):
        return per_token.sum()
    raise ValueError(f"aggregate must be token_mean, sequence_mean or sequence_sum, got {how!r}")


def group_advantages(method: str, rewards: torch.Tensor, k: int, scale: str = "group"
                     ) -> torch.Tensor:
    """One advantage per response from its group's rewards: (B·k,) -> (B·k,)."""
    grouped = rewards.view(-1, k)                                          # (B, k)
    if method == "grpo":
        return GROUP_ADVANTAGES["grpo"](grouped, scale=scale).reshape(-1)
    return GROUP_ADVANTAGES["rloo"](grouped).reshape(-1)


@torch.no_grad()
def no_grad_logps(model, experience: Experience, temperature: float, rows_per_pass: int
                  ) -> torch.Tensor:
    """(N, R) log-probs of the responses under ``model``, in passes of ``rows_per_pass`` rows."""
    parts = []
    for start in range(0, experience.rows, rows_per_pass):
        ids = experience.input_ids[start:start + rows_per_pass]
        mask = experience.attention_mask[start:start + rows_per_pass]
        response_mask = experience.response_mask[start:start + rows_per_pass]
        logits, _ = response_logits(model, ids, mask, experience.response_width,
                                    temperature=temperature, share_prompts=True)
        parts.append(response_logps(logits, ids, response_mask))
    return torch.cat(parts)


def build_experience(online: OnlineRun, policy, batch: RolloutBatch,
                     reference: Reference | None, method: str) -> tuple[Experience, dict]:
    """Advantages, and the log-probs the updates need, of one rollout batch."""
    cfg, rollout = online.cfg, batch.rollout
    experience = Experience.from_rollout(rollout, advantages=torch.zeros_like(rollout.logps))
    several = cfg.update.epochs > 1 or cfg.update.minibatches > 1
    rows_per_pass = cfg.train.micro_batch_size or experience.rows
    metrics, rewards = {}, batch.scores
    if several or reference is not None:
        with online.engine.accelerator.autocast():
            old = no_grad_logps(policy, experience, cfg.rollout.temperature, rows_per_pass)
        experience.old_logps = old if several else None
    if reference is not None:
        with online.engine.accelerator.autocast():
            ref = reference.logps(policy, experience.input_ids, experience.attention_mask,
                                  experience.response_mask, temperature=cfg.rollout.temperature,
                                  rows_per_pass=rows_per_pass, share_prompts=True)
        kl = token_kl(old, ref, rollout.response_mask, cfg.kl.estimator).sum(dim=1)   # (N,)
        kl_k1 = token_kl(old, ref, rollout.response_mask, "k1").sum(dim=1)
        metrics.update(kl=online.global_mean(kl), kl_k1=online.global_mean(kl_k1),
                       kl_coef=cfg.kl.coef)
        if cfg.kl.placement == "reward":
            rewards = rewards - cfg.kl.coef * kl
        else:
            experience.ref_logps = ref
    scale = getattr(cfg.group, "scale", "group")
    advantages = group_advantages(method, rewards, cfg.group.k, scale)
    experience.advantages = sequence_advantages(advantages, rollout.response_mask)
    metrics["advantage_abs"] = float(masked_mean(experience.advantages.abs(),
                                                 rollout.response_mask))
    return experience, metrics


def train_group(cfg, run, method: str):
    """Train with RLOO (``method="rloo"``) or GRPO into the run directory ``run``.

    Returns:
        The trained policy, unwrapped (a peft model under LoRA); ``final/`` holds its copy.
    """
    online = OnlineRun(cfg, run)
    engine = online.engine
    policy = build_policy(cfg.model, cfg.peft, online.tokenizer, seed=cfg.train.seed)
    disable_dropout(policy)
    reference = None
    if cfg.kl.coef > 0:
        reference = Reference(policy, continued_adapter=cfg.peft.adapter is not None)
    model = engine.prepare(policy, len(online.prompts))
    if reference is not None:
        reference.to(engine.device)
    online.start()
    loss_fn = GroupLoss(clip_eps=cfg.update.clip_eps, aggregate=cfg.group.aggregate,
                        temperature=cfg.rollout.temperature,
                        kl_coef=cfg.kl.coef if cfg.kl.placement == "loss" else 0.0,
                        kl_estimator=cfg.kl.estimator)
    raw = engine.accelerator.unwrap_model(model)
    model.train()
    for plan in engine.plans(len(online.prompts)):
        batch = online.collect(raw, plan.micro_batches[0], cfg.group.k)
        experience, metrics = build_experience(online, raw, batch, reference, method)
        metrics.update(online.batch_metrics(batch))
        metrics.update(run_updates(
            engine, model, experience, loss_fn, loss_fn.normaliser, epochs=cfg.update.epochs,
            minibatches=cfg.update.minibatches, micro_batch_size=cfg.train.micro_batch_size,
            max_approx_kl=cfg.update.max_approx_kl, seed=cfg.train.seed, iteration=plan.step))
        online.finish(batch, metrics, metrics.pop("loss"))
    engine.close()
    save_final(engine, raw, online.tokenizer, run)
    return raw
