"""KL-coefficient controllers (alignkit.losses.kl_control)."""

from __future__ import annotations

import pytest
import torch

from alignkit.losses import KL_CONTROLLERS, AdaptiveKLController, FixedKLController


def test_adaptive_controller_at_target_keeps_its_coefficient():
    """current = target = 6: err = 6/6 - 1 = 0, so coef stays 0.1 after any number of steps."""
    controller = AdaptiveKLController(init_coef=0.1, target=6.0, horizon=10_000)
    for _ in range(5):
        assert controller.update(6.0, n_steps=256) == pytest.approx(0.1, abs=1e-12)


def test_adaptive_controller_hand_computed_steps():
    """target 6, horizon 10000, 256 samples per batch.
    KL 9: err = 9/6 - 1 = 0.5, clipped to 0.2 -> 0.1 * (1 + 0.2 * 256 / 10000) = 0.100512.
    Then KL 5.4 (a 0-d tensor): err = 0.9 - 1 = -0.1 -> 0.100512 * (1 - 0.1 * 0.0256)
    = 0.100512 * 0.99744 = 0.100255. KL 0: err -1 clipped to -0.2 -> * (1 - 0.00512)."""
    controller = AdaptiveKLController(init_coef=0.1, target=6.0, horizon=10_000)
    assert controller.update(9.0, 256) == pytest.approx(0.100512, abs=1e-9)
    assert controller.update(torch.tensor(5.4), 256) == pytest.approx(0.100512 * 0.99744, abs=1e-8)
    before = controller.coef
    assert controller.update(0.0, 256) == pytest.approx(before * (1 - 0.00512), abs=1e-12)


def test_warm_up_holds_the_coefficient_until_the_kl_nears_its_target():
    """target 5, horizon 100, 50 samples per batch, warm-up 200 samples.
    KL 0 and 3.9 (err -1 and -0.22, seen 50 and 100): held at 0.1. KL 4 (err -0.2): engaged,
    0.1 * (1 - 0.2 * 50 / 100) = 0.09. KL 0 afterwards moves it: 0.09 * 0.9 = 0.081."""
    controller = AdaptiveKLController(0.1, target=5.0, horizon=100, warmup=200)
    assert controller.update(0.0, 50) == 0.1
    assert controller.update(3.9, 50) == 0.1
    assert not controller.engaged
    assert controller.update(4.0, 50) == pytest.approx(0.09, abs=1e-12)
    assert controller.engaged
    assert controller.update(0.0, 50) == pytest.approx(0.081, abs=1e-12)


def test_warm_up_ends_after_its_samples_even_far_from_the_target():
    """warm-up 100, 50 per batch: batches 1-2 (seen 50, 100) held at 0.1; batch 3 (seen 150)
    moves it although KL 1 is far below 5: 0.1 * (1 - 0.2 * 0.5) = 0.09."""
    controller = AdaptiveKLController(0.1, target=5.0, horizon=100, warmup=100)
    assert [controller.update(1.0, 50) for _ in range(3)] == pytest.approx([0.1, 0.1, 0.09])


def test_without_warm_up_the_first_batches_wind_the_coefficient_down():
    """The same KLs 0 and 3.9 with warm-up 0: 0.1 * 0.9 * 0.9 (both clipped to -0.2) = 0.081."""
    controller = AdaptiveKLController(0.1, target=5.0, horizon=100)
    controller.update(0.0, 50)
    assert controller.update(3.9, 50) == pytest.approx(0.081, abs=1e-12)


def test_state_from_before_the_warm_up_resumes_with_the_plain_rule():
    """A checkpoint without warm-up fields: engaged, so the coefficient moves at once."""
    controller = AdaptiveKLController(0.1, target=5.0, horizon=100, warmup=1000)
    controller.load_state_dict({"coef": 0.2, "target": 5.0, "horizon": 100.0})
    assert controller.update(0.0, 50) == pytest.approx(0.18, abs=1e-12)


def test_state_dict_round_trip_resumes_exactly():
    """A controller restored from a checkpoint produces the same coefficients afterwards."""
    original = AdaptiveKLController(0.2, target=4.0, horizon=1000, warmup=256)
    original.update(1.0, 64)
    original.update(5.0, 64)
    restored = AdaptiveKLController(1.0, target=1.0, horizon=1)
    restored.load_state_dict(original.state_dict())
    assert (restored.engaged, restored.seen, restored.warmup) == (True, 128, 256)
    for kl in (3.0, 7.5, 4.1):
        assert restored.update(kl, 64) == original.update(kl, 64)
    fixed = FixedKLController(0.3)
    copy = FixedKLController(0.0)
    copy.load_state_dict(fixed.state_dict())
    assert copy.coef == 0.3


def test_fixed_controller_never_moves():
    controller = FixedKLController(0.05)
    assert controller.update(100.0, 512) == 0.05
    assert controller.coef == 0.05


def test_registry_and_bad_arguments():
    assert KL_CONTROLLERS["adaptive"] is AdaptiveKLController
    assert KL_CONTROLLERS["fixed"] is FixedKLController
    assert len(KL_CONTROLLERS) == 2
    with pytest.raises(ValueError, match="target"):
        AdaptiveKLController(0.1, target=0.0, horizon=100)
    with pytest.raises(ValueError, match="warmup"):
        AdaptiveKLController(0.1, target=1.0, horizon=100, warmup=-1)
    with pytest.raises(ValueError, match="coef"):
        FixedKLController(-0.1)
