"""RLOO and GRPO maths: group advantages, aggregation, the loss's gradient and its KL term."""

import math

import pytest
import torch

from alignkit.models.load import init_causal_lm_from_config
from alignkit.rollout import generate
from alignkit.train.group import GroupLoss, aggregate, group_advantages, no_grad_logps
from alignkit.train.online import Experience, sequence_advantages
from alignkit.train.online_forward import response_logits, response_logps


def test_rloo_advantages_by_hand():
    """Groups (1, 2) and (3, 6), k = 2: each minus the other one -> -1, 1, -3, 3.
    One group of k = 4, (1, 2, 3, 6): 1 - (2+3+6)/3 = -2.666667, 2 - 10/3 = -1.333333,
    3 - 9/3 = 0, 6 - 6/3 = 4."""
    rewards = torch.tensor([1.0, 2.0, 3.0, 6.0])
    torch.testing.assert_close(group_advantages("rloo", rewards, 2),
                               torch.tensor([-1.0, 1.0, -3.0, 3.0]))
    torch.testing.assert_close(group_advantages("rloo", rewards, 4),
                               torch.tensor([-2.666667, -1.333333, 0.0, 4.0]))


def test_grpo_advantages_by_hand():
    """Group (1, 2): mean 1.5, sample std 0.707107 -> ±0.5 / (0.707107 + 1e-4) = ±0.707007.
    Group (3, 6): mean 4.5, std 2.121320 -> ±1.5 / 2.121420 = ±0.707074.
    scale none: centred only, ±0.5 and ±1.5."""
    rewards = torch.tensor([1.0, 2.0, 3.0, 6.0])
    torch.testing.assert_close(group_advantages("grpo", rewards, 2),
                               torch.tensor([-0.707007, 0.707007, -0.707074, 0.707074]))
    torch.testing.assert_close(group_advantages("grpo", rewards, 2, scale="none"),
                               torch.tensor([-0.5, 0.5, -1.5, 1.5]))


def test_aggregations_by_hand():
    """Per-token terms [[1, 2, -], [3, -, -]] (- is padding):
    token_mean and sequence_sum add the tokens: 6; sequence_mean averages each row first:
    (1 + 2)/2 + 3/1 = 4.5. The loss divides by the normaliser afterwards."""
    per_token = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert aggregate(per_token, mask, "token_mean").item() == 6.0
    assert aggregate(per_token, mask, "sequence_sum").item() == 6.0
    assert aggregate(per_token, mask, "sequence_mean").item() == 4.5
    with pytest.raises(ValueError, match="aggregate"):
        aggregate(per_token, mask, "mean")


def test_sequence_advantages_broadcast_over_real_tokens_only():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = sequence_advantages(torch.tensor([2.0, -1.0]), mask)
    torch.testing.assert_close(out, torch.tensor([[2.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]))


@pytest.fixture(scope="module")
def batch(toy_model):
    """The toy policy in float64 and an experience of 4 sampled responses to 2 prompts."""
    _, config = toy_model
    model = init_causal_lm_from_config(config, seed=0).double()
    rollout = generate(model, [[1, 9, 10], [1, 12]], max_new_tokens=5, eos_token_id=2,
                       pad_token_id=0, num_samples=2, generator=torch.Generator().manual_seed(0))
    advantages = torch.tensor([1.5, -0.5, 0.25, -1.25], dtype=torch.float64)
    experience = Experience.from_rollout(
        rollout, advantages=sequence_advantages(advantages, rollout.response_mask).double())
    return model, experience, advantages


def _grads(model):
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_one_update_is_reinforce_on_the_sequence_log_prob(batch):
    """With no stored old log-probs the ratio is exactly 1, so the gradient of the
    sequence_sum loss must be that of -(1/N) Σ_i A_i Σ_t log π(y_it) (REINFORCE)."""
    model, experience, advantages = batch
    loss_fn = GroupLoss(clip_eps=0.2, aggregate="sequence_sum", temperature=1.0)
    model.zero_grad()
    loss, stats = loss_fn(model, experience, loss_fn.normaliser(experience))
    loss.backward()
    ours = _grads(model)
    model.zero_grad()
    logits, _ = response_logits(model, experience.input_ids, experience.attention_mask,
                                experience.response_width)
    logps = response_logps(logits, experience.input_ids, experience.response_mask)
    reinforce = -(advantages * logps.sum(dim=1)).sum() / 4
    reinforce.backward()
    for a, b in zip(ours, _grads(model), strict=True):
        torch.testing.assert_close(a, b)
    assert stats["clip_fraction"][0] == 0.0
    model.zero_grad()


def test_kl_in_the_loss_adds_beta_times_k3_per_token(batch):
    """With ref = log π - 0.5 at every token, k3 = e^{-0.5} + 0.5 - 1 = 0.106531 per token,
    so under token_mean the loss rises by exactly β · 0.106531 (β = 0.2: 0.021306)."""
    model, experience, _ = batch
    logps = no_grad_logps(model, experience, 1.0, 4)
    with_ref = Experience(**{**experience.__dict__, "ref_logps": logps - 0.5})
    plain = GroupLoss(clip_eps=0.2, aggregate="token_mean", temperature=1.0)
    with_kl = GroupLoss(clip_eps=0.2, aggregate="token_mean", temperature=1.0, kl_coef=0.2,
                        kl_estimator="k3")
    total = plain.normaliser(experience)
    base, _ = plain(model, with_ref, total)
    penalised, stats = with_kl(model, with_ref, total)
    k3 = math.exp(-0.5) + 0.5 - 1
    assert k3 == pytest.approx(0.106531, abs=1e-6)
    assert (penalised - base).item() == pytest.approx(0.2 * k3, abs=1e-9)
    assert stats["kl_loss"][0] / stats["kl_loss"][1] == pytest.approx(k3, abs=1e-9)


def test_normalisers(batch):
    _, experience, _ = batch
    tokens = float(experience.response_mask.sum())
    assert GroupLoss(clip_eps=0.2, aggregate="token_mean", temperature=1.0).normaliser(
        experience) == tokens
    for how in ("sequence_mean", "sequence_sum"):
        assert GroupLoss(clip_eps=0.2, aggregate=how, temperature=1.0).normaliser(
            experience) == 4.0


def test_rloo_kl_in_the_reward_enters_the_advantages(batch, toy_model, tmp_path):
    """With the KL in the reward, each response's score becomes score - β Σ_t k1_t before
    the leave-one-out baseline: advantages equal rloo(scores - 0.3 · KL) computed here from
    independent forward passes of the policy and of the (different) reference."""
    import contextlib
    import types

    from alignkit.config import validate_config
    from alignkit.train.group import build_experience
    from alignkit.train.group_config import RLOOConfig
    from alignkit.train.online_forward import Reference
    from alignkit.train.online_run import RolloutBatch

    model, experience, _ = batch
    policy = copy_with_noise(model)
    reference = Reference(model)  # the unperturbed model plays the starting policy
    cfg = validate_config(RLOOConfig, {
        "model": {"path": "unused"}, "data": {"train": "unused"}, "reward": {"source": "gold"},
        "group": {"k": 2}, "kl": {"coef": 0.3, "estimator": "k1", "placement": "reward"}})
    online = types.SimpleNamespace(
        cfg=cfg, engine=types.SimpleNamespace(accelerator=types.SimpleNamespace(
            autocast=contextlib.nullcontext)), global_mean=lambda t: float(t.mean()))
    rollout = rollout_of(experience)
    scores = torch.tensor([1.0, 0.0, 2.0, 1.0], dtype=torch.float64)
    batch_ = RolloutBatch(rollout, ["p"] * 4, ["r"] * 4, scores, scores, None)
    built, metrics = build_experience(online, policy, batch_, reference, "rloo")
    mask = experience.response_mask
    policy_logps = no_grad_logps(policy, experience, 1.0, 4)
    reference_logps = no_grad_logps(model, experience, 1.0, 4)
    kl = torch.where(mask, policy_logps - reference_logps, 0).sum(dim=1)
    assert kl.abs().min() > 1e-3, "the perturbed policy must differ from the reference"
    expected = group_advantages("rloo", scores - 0.3 * kl, 2)
    torch.testing.assert_close(built.advantages, sequence_advantages(expected, mask).to(
        built.advantages.dtype))
    assert metrics["kl"] == pytest.approx(float(kl.mean()))
    assert built.old_logps is None and built.ref_logps is None


def copy_with_noise(model):
    import copy

    noisy = copy.deepcopy(model)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(7)
        for p in noisy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return noisy


def rollout_of(experience):
    from alignkit.rollout import Rollout

    width = experience.response_width
    prompt_width = experience.input_ids.shape[1] - width
    return Rollout(experience.input_ids[:, :prompt_width],
                   experience.attention_mask[:, :prompt_width],
                   experience.input_ids[:, prompt_width:], experience.response_mask,
                   torch.ones(experience.rows, dtype=torch.bool),
                   torch.zeros(experience.rows, width))
