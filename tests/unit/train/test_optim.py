"""The optimiser's update and the learning-rate schedule, by hand."""

import math

import pytest
import torch

from alignkit.train.optim import allocate_states, build_optimizer, lr_factor


def _one_step(params, grads):
    optimizer = build_optimizer(params, lr=0.1, weight_decay=0.01, betas=(0.9, 0.999),
                                eps=1e-8)
    for param, grad in zip(params, grads, strict=True):
        param.grad = grad
    optimizer.step()
    return optimizer


def test_first_adamw_step_by_hand_and_no_decay_on_vectors():
    """Step 1: m̂ = g and v̂ = g², so the update is lr·g/(|g| + eps) = ±0.1 per entry;
    decoupled decay multiplies a matrix by 1 - lr·wd = 0.999 first, a vector not at all."""
    matrix = torch.nn.Parameter(torch.ones(2, 2))
    vector = torch.nn.Parameter(torch.ones(3))
    optimizer = _one_step([matrix, vector], [torch.full((2, 2), 0.5), torch.tensor([2.0, -1, 0])])
    step = 0.1 * 0.5 / (0.5 + 1e-8)
    torch.testing.assert_close(matrix.detach(), torch.full((2, 2), 0.999 - step))
    torch.testing.assert_close(vector.detach(), torch.tensor([0.9, 1.1, 1.0]))
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.01, 0.0]


@pytest.mark.parametrize(("schedule", "step", "expected"), [
    ("constant", 5, 1.0),
    ("linear", 0, 0.25),   # warm-up: (0 + 1) / 4
    ("linear", 3, 1.0),
    ("linear", 7, 1 - 3 / 6),   # 3 of the 6 decay steps after warm-up
    ("cosine", 7, 0.5 * (1 + math.cos(math.pi * 3 / 6))),
])
def test_schedule_factors(schedule, step, expected):
    factor = lr_factor(step, schedule=schedule, warmup_steps=4, total_steps=10)
    assert factor == pytest.approx(expected)


def _three_steps(allocate_first: bool):
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 2, generator=gen)),
              torch.nn.Parameter(torch.randn(4, generator=gen))]
    optimizer = build_optimizer(params, lr=0.1, weight_decay=0.01, betas=(0.9, 0.999),
                                eps=1e-8)
    if allocate_first:
        allocate_states(optimizer)
        assert all(torch.equal(optimizer.state[p]["exp_avg_sq"], torch.zeros_like(p))
                   for p in params)
    for _ in range(3):
        for param in params:
            param.grad = torch.randn(param.shape, generator=gen)
        optimizer.step()
    return params, optimizer


def test_states_allocated_up_front_are_the_ones_the_first_step_would_create():
    """Same keys, dtypes, devices and values, and the same weights after three steps."""
    lazy_params, lazy = _three_steps(allocate_first=False)
    early_params, early = _three_steps(allocate_first=True)
    for a, b in zip(lazy_params, early_params, strict=True):
        assert torch.equal(a, b)
        lazy_state, early_state = lazy.state[a], early.state[b]
        assert lazy_state.keys() == early_state.keys()
        for key in lazy_state:
            assert lazy_state[key].dtype == early_state[key].dtype, key
            assert lazy_state[key].device == early_state[key].device, key
            assert torch.equal(lazy_state[key], early_state[key]), key
    assert float(early.state[early_params[0]]["step"]) == 3.0
