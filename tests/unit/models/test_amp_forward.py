"""accelerate's mixed-precision wrapper on forward is recognised, and nothing else is."""

import torch
from accelerate import Accelerator

from alignkit.models.amp_forward import runs_as_wrapped, wrapped_autocast
from alignkit.train.engine import allow_precision


def _prepared(mixed: str) -> torch.nn.Module:
    allow_precision(mixed)
    model = Accelerator(mixed_precision=mixed, cpu=True).prepare(torch.nn.Linear(3, 2))
    allow_precision("no")
    return model


def test_the_wrapper_s_autocast_is_read():
    amp = wrapped_autocast(_prepared("bf16"))
    assert (amp.device, amp.fast_dtype) == ("cpu", torch.bfloat16)


def test_plain_and_otherwise_replaced_forwards_are_not_recognised():
    assert wrapped_autocast(_prepared("no")) is None
    patched = torch.nn.Linear(3, 2)
    patched.forward = lambda x: x
    assert wrapped_autocast(patched) is None


def test_it_runs_as_wrapped_only_inside_the_same_autocast():
    model = _prepared("bf16")
    assert not runs_as_wrapped(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert runs_as_wrapped(model)
        with torch.autocast("cpu", enabled=False):
            assert not runs_as_wrapped(model)
    with torch.autocast("cpu", dtype=torch.float16):
        assert not runs_as_wrapped(model)
