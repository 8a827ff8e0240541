"""``alignkit ppo``: PPO with a KL penalty towards the reference, and its cost-constrained form.

An iteration reads top to bottom:

1. sample one response per prompt (batched, KV-cached, dropout off) and score
   it; with a constraint, also its cost;
2. one no-grad pass of the policy and critic for the sampling policy's
   log-probs and the values, one of the reference for its log-probs;
3. per-token rewards ``-kl_coef · KL_t``, plus the score at the last token
   (Ziegler et al. 2019); costs only at the last token;
4. GAE advantages and returns; with a constraint, the multiplier λ steps on
   the batch's mean cost and the advantage becomes ``(A_r - λ A_c)/(1 + λ)``
   (Safe-RLHF); advantages whitened over the batch's tokens;
5. PPO epochs over shuffled minibatches: clipped surrogate plus
   ``value.coef`` times the clipped value loss, gradient clipping, and an
   early stop once the approximate KL from the sampling policy passes
   ``update.max_approx_kl``;
6. the KL controller sees the batch's mean KL and sets the next coefficient.
"""

from __future__ import annotations

import math

import torch

from alignkit.losses import (
    KL_CONTROLLERS,
    constrained_advantages,
    gae,
    lagrangian_step,
    masked_mean,
    masked_var,
    ppo_policy_loss,
    ppo_value_loss,
    whiten,
)
from alignkit.train.models_setup import build_policy
from alignkit.train.online import Experience
from alignkit.train.online_forward import (
    Reference,
    disable_dropout,
    per_token_rewards,
    response_entropy,
    response_logps,
    token_kl,
)
from alignkit.train.online_rewards import build_source
from alignkit.train.online_run import OnlineRun, RolloutBatch
from alignkit.train.online_update import Stats, run_updates
from alignkit.train.outputs import save_final
from alignkit.train.value_model import (
    ActorCritic,
    ValueHead,
    build_critic_backbone,
    hidden_size_of,
)


class PPOLoss:
    """Clipped surrogate plus weighted clipped value losses, averaged over response tokens."""

    def __init__(self, *, clip_eps: float, value_clip: float, value_coef: float,
                 temperature: float) -> None:
        self.clip_eps, self.value_clip = clip_eps, value_clip
        self.value_coef, self.temperature = value_coef, temperature

    @staticmethod
    def normaliser(experience: Experience) -> float:
        return float(experience.response_mask.sum())

    def __call__(self, model, part: Experience, total: float) -> tuple[torch.Tensor, Stats]:
        mask = part.response_mask
        logits, values = model(part.input_ids, part.attention_mask, part.response_width,
                               self.temperature)
        logps = response_logps(logits, part.input_ids, mask)
        policy_loss, metrics = ppo_policy_loss(logps, part.old_logps, part.advantages, mask,
                                               self.clip_eps)
        value_loss = torch.zeros((), device=logps.device)
        for c in range(values.shape[-1]):
            loss_c, value_metrics = ppo_value_loss(values[..., c], part.old_values[..., c],
                                                   part.returns[..., c], mask, self.value_clip)
            value_loss = value_loss + loss_c.sum()
            if c == 0:
                metrics["value_clip_fraction"] = value_metrics["value_clip_fraction"]
        tokens = float(mask.sum())
        stats = {name: (float(value) * tokens, tokens) for name, value in metrics.items()}
        stats["policy_loss"] = (float(policy_loss.detach().sum()), tokens)
        stats["value_loss"] = (float(value_loss.detach()), tokens)
        stats["entropy"] = (float(response_entropy(logits.detach(), mask).sum()), tokens)
        return (policy_loss.sum() + self.value_coef * value_loss) / total, stats


def explained_variance(values: torch.Tensor, returns: torch.Tensor,
                       mask: torch.Tensor) -> float:
    """``1 - Var(returns - values) / Var(returns)`` over the masked tokens (1 is perfect)."""
    variance = float(masked_var(returns, mask))
    if variance == 0:
        return float("nan")
    return 1.0 - float(masked_var(returns - values, mask)) / variance


@torch.no_grad()
def rollout_pass(actor_critic: ActorCritic, experience: Experience, temperature: float,
                 rows_per_pass: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, R) log-probs and (N, R, C) values at rollout time, in passes of ``rows_per_pass``."""
    logps, values = [], []
    for start in range(0, experience.rows, rows_per_pass):
        part = slice(start, start + rows_per_pass)
        ids, mask = experience.input_ids[part], experience.attention_mask[part]
        logits, value = actor_critic(ids, mask, experience.response_width, temperature)
        logps.append(response_logps(logits, ids, experience.response_mask[part]))
        values.append(value)
    return torch.cat(logps), torch.cat(values)


class PPOState:
    """The KL controller and the Lagrange multiplier, saved in checkpoints."""

    def __init__(self, cfg, extra: dict) -> None:
        kl = cfg.kl
        if kl.controller == "adaptive":
            self.controller = KL_CONTROLLERS["adaptive"](kl.init_coef, kl.target, kl.horizon,
                                                         warmup=kl.warmup)
        else:
            self.controller = KL_CONTROLLERS["fixed"](kl.init_coef)
        if "kl_controller" in extra:
            self.controller.load_state_dict(extra["kl_controller"])
        self.log_lambda = float(extra.get("log_lambda", math.log(cfg.constraint.lambda_init)))

    def save(self, extra: dict) -> None:
        extra.update(kl_controller=self.controller.state_dict(), log_lambda=self.log_lambda)


def build_experience(online: OnlineRun, actor_critic: ActorCritic, batch: RolloutBatch,
                     reference: Reference, state: PPOState, cost_source) -> tuple[Experience,
                                                                                  dict]:
    """Rewards, advantages and returns of one rollout batch (see the module docstring)."""
    cfg, rollout, mask = online.cfg, batch.rollout, batch.rollout.response_mask
    experience = Experience.from_rollout(rollout, advantages=torch.zeros_like(rollout.logps))
    rows = cfg.train.micro_batch_size or experience.rows
    with online.engine.accelerator.autocast():
        old, values = rollout_pass(actor_critic, experience, cfg.rollout.temperature, rows)
        ref = reference.logps(actor_critic.policy, experience.input_ids,
                              experience.attention_mask, mask,
                              temperature=cfg.rollout.temperature, rows_per_pass=rows)
    kl = token_kl(old, ref, mask, cfg.kl.estimator)
    coef = state.controller.coef
    rewards = per_token_rewards(batch.scores, kl, mask, coef)
    u = cfg.update
    advantages, returns = gae(rewards, values[..., 0], mask, gamma=u.gamma, lam=u.lam)
    metrics = {"kl": online.global_mean(kl.sum(dim=1)), "kl_coef": coef,
               "kl_k1": online.global_mean(token_kl(old, ref, mask, "k1").sum(dim=1)),
               "explained_variance": explained_variance(values[..., 0], returns, mask)}
    all_returns = [returns]
    if cost_source is not None:
        costs = cost_source(batch.prompts, batch.responses).float().to(rewards.device)
        cost_rewards = per_token_rewards(costs, torch.zeros_like(kl), mask, 0.0)
        cost_advantages, cost_returns = gae(cost_rewards, values[..., 1], mask,
                                            gamma=u.gamma, lam=u.lam)
        mean_cost = online.global_mean(costs)
        c = cfg.constraint
        state.log_lambda = float(lagrangian_step(state.log_lambda, mean_cost, c.threshold,
                                                 c.lambda_lr, c.max_lambda))
        advantages = constrained_advantages(advantages, cost_advantages,
                                            math.exp(state.log_lambda))
        all_returns.append(cost_returns)
        metrics.update(cost=mean_cost, **{"lambda": math.exp(state.log_lambda)})
    if u.whiten_advantages:
        advantages = whiten(advantages, mask)
    experience.advantages = advantages
    experience.old_logps, experience.old_values = old, values
    experience.returns = torch.stack(all_returns, dim=-1)
    metrics["advantage_abs"] = float(masked_mean(advantages.abs(), mask))
    return experience, metrics


def build_actor_critic(cfg, tokenizer, constrained: bool) -> ActorCritic:
    """The policy (LoRA or full), with a shared value head or a separate critic."""
    policy = build_policy(cfg.model, cfg.peft, tokenizer, seed=cfg.train.seed)
    critic = None
    if cfg.value.model == "separate":
        critic = build_critic_backbone(cfg.model, cfg.value, len(tokenizer), seed=cfg.train.seed)
    source = critic if critic is not None else policy
    head = ValueHead(hidden_size_of(source), outputs=2 if constrained else 1)
    return disable_dropout(ActorCritic(policy, head, critic))


def train_ppo(cfg, run):
    """Train with PPO into the run directory ``run`` (created by the caller).

    Returns:
        The trained policy, unwrapped (a peft model under LoRA); ``final/`` holds its copy.
    """
    kl_target = cfg.kl.target if cfg.kl.controller == "adaptive" else None
    online = OnlineRun(cfg, run, kl_target=kl_target)
    engine = online.engine
    constrained = cfg.constraint.cost is not None
    actor_critic = build_actor_critic(cfg, online.tokenizer, constrained)
    reference = Reference(actor_critic.policy, continued_adapter=cfg.peft.adapter is not None)
    model = engine.prepare(actor_critic, len(online.prompts))
    reference.to(engine.device)
    online.start()
    cost_source = None
    if constrained:
        cost_source = build_source(cfg.constraint.cost, batched=cfg.constraint.batched,
                                   device=engine.device, batch_size=cfg.reward.batch_size,
                                   what="cost")
    state = PPOState(cfg, engine.state.extra)
    loss_fn = PPOLoss(clip_eps=cfg.update.clip_eps, value_clip=cfg.value.clip,
                      value_coef=cfg.value.coef, temperature=cfg.rollout.temperature)
    raw: ActorCritic = engine.accelerator.unwrap_model(model)
    model.train()
    for plan in engine.plans(len(online.prompts)):
        batch = online.collect(raw.policy, plan.micro_batches[0], 1)
        experience, metrics = build_experience(online, raw, batch, reference, state,
                                               cost_source)
        metrics.update(online.batch_metrics(batch))
        metrics.update(run_updates(
            engine, model, experience, loss_fn, loss_fn.normaliser, epochs=cfg.update.epochs,
            minibatches=cfg.update.minibatches, micro_batch_size=cfg.train.micro_batch_size,
            max_approx_kl=cfg.update.max_approx_kl, seed=cfg.train.seed, iteration=plan.step))
        state.controller.update(metrics["kl"], engine.global_sum(batch.rows))
        state.save(engine.state.extra)
        online.finish(batch, metrics, metrics.pop("loss"))
    engine.close()
    save_final(engine, raw.policy, online.tokenizer, run)
    return raw.policy
