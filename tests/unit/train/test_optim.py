"""The optimiser's update and the learning-rate schedule, by hand."""

import math

import pytest
import torch

from alignkit.train.optim import build_optimizer, lr_factor


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
