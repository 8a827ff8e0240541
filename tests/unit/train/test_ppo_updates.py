"""Updates on a rollout batch: minibatch order, accumulation equivalence, update counts."""

import copy

import pytest
import torch

from alignkit.models.load import init_causal_lm_from_config
from alignkit.rollout import generate
from alignkit.rundir import RunDir
from alignkit.train.engine import Engine
from alignkit.train.group import GroupLoss, no_grad_logps
from alignkit.train.online import Experience, sequence_advantages
from alignkit.train.online_config import OnlineTrainSettings, engine_settings
from alignkit.train.online_update import minibatch_order, run_updates
from alignkit.train.settings import OptimSettings


def test_minibatch_order_is_seeded_and_covers_every_row_each_epoch():
    plan = minibatch_order(6, epochs=2, minibatches=2, seed=0, iteration=4)
    assert len(plan) == 2 and all(len(epoch) == 2 for epoch in plan)
    for epoch in plan:
        assert sorted(torch.cat(epoch).tolist()) == list(range(6))
    again = minibatch_order(6, epochs=2, minibatches=2, seed=0, iteration=4)
    assert all(torch.equal(a, b) for x, y in zip(plan, again, strict=True)
               for a, b in zip(x, y, strict=True))
    other = minibatch_order(6, epochs=2, minibatches=2, seed=0, iteration=5)
    assert not torch.equal(torch.cat(plan[0]), torch.cat(other[0]))
    (single,) = minibatch_order(6, epochs=1, minibatches=1, seed=0, iteration=4)
    assert single[0].tolist() == list(range(6))


@pytest.fixture
def setup(toy_model, tmp_path):
    """The toy policy (float64) and an experience of 8 responses with fixed advantages."""
    model = init_causal_lm_from_config(toy_model[1], seed=0).double()
    rollout = generate(model, [[1, 9, 10], [1, 12], [1, 13, 14, 15], [1, 19]],
                       max_new_tokens=6, eos_token_id=2, pad_token_id=0, num_samples=2,
                       generator=torch.Generator().manual_seed(0))
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.3, -0.3], dtype=torch.float64)
    experience = Experience.from_rollout(
        rollout, advantages=sequence_advantages(advantages, rollout.response_mask).double())
    return model, experience, tmp_path


def _updated(model, experience, run_path, **options):
    model = copy.deepcopy(model)
    train = OnlineTrainSettings(prompts_per_iteration=1, max_iterations=1)
    engine = Engine(engine_settings(train), OptimSettings(lr=1e-2, schedule="constant"),
                    RunDir.create(run_path, "a: 1\n", overwrite=True))
    prepared = engine.prepare(model, 1)
    loss_fn = GroupLoss(clip_eps=0.2, aggregate=options.pop("aggregate"), temperature=1.0,
                        share_prompts=options.pop("share_prompts", False))
    metrics = run_updates(engine, prepared, experience, loss_fn, loss_fn.normaliser, seed=0,
                          iteration=1, max_approx_kl=None, **options)
    return model, metrics


@pytest.mark.parametrize("aggregate", ["token_mean", "sequence_mean", "sequence_sum"])
def test_micro_batches_give_the_update_of_one_pass(setup, aggregate):
    """Micro-batches of 3 rows (3 + 3 + 2 of 8) divide by the whole minibatch's total, so
    the accumulated gradient, and so the weights after the update, equal one pass's (each
    row through the same kernels: prompts are not shared here, as a micro-batch of 3 would
    split a pair of samples and compute differently)."""
    model, experience, root = setup
    whole, _ = _updated(model, experience, root / "a", aggregate=aggregate, epochs=1,
                        minibatches=1, micro_batch_size=None)
    parts, _ = _updated(model, experience, root / "b", aggregate=aggregate, epochs=1,
                        minibatches=1, micro_batch_size=3)
    start = dict(model.named_parameters())
    for a, b in zip(whole.parameters(), parts.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    assert any(not torch.equal(p, start[n]) for n, p in whole.named_parameters())


def test_sharing_prompts_gives_the_same_update(setup):
    """The 8 rows are 4 prompts x 2 samples: computing each prompt once gives the weights of
    the plain pass up to float rounding (this float64 model's norms compute in float32, and
    Adam's first step divides each gradient by its own size, so where a gradient is near eps
    its rounding shows: up to 1.4e-7 here, against updates of 1e-2)."""
    model, experience, root = setup
    plain, _ = _updated(model, experience, root / "a", aggregate="token_mean", epochs=1,
                        minibatches=1, micro_batch_size=None)
    shared, _ = _updated(model, experience, root / "b", aggregate="token_mean", epochs=1,
                         minibatches=1, micro_batch_size=None, share_prompts=True)
    start = dict(model.named_parameters())
    for (name, a), b in zip(plain.named_parameters(), shared.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        moved = (a - start[name]).abs().max()
        assert moved == 0 or moved > 1e-4, name


def test_every_minibatch_of_every_epoch_is_an_update(setup):
    """3 epochs x 2 minibatches are 6 updates; against the sampling policy's log-probs the
    later ones see a moved policy, so some ratios leave [0.8, 1.2] and the KL is positive."""
    model, experience, root = setup
    experience.old_logps = no_grad_logps(model, experience, 1.0, 8)
    _, metrics = _updated(model, experience, root / "c", aggregate="token_mean", epochs=3,
                          minibatches=2, micro_batch_size=None)
    assert metrics["updates"] == 6.0 and metrics["early_stopped"] == 0.0
    assert metrics["clip_fraction"] > 0 and metrics["approx_kl"] > 0
