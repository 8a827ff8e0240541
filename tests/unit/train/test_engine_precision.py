"""Runs of different precisions one after another in one process."""

import pytest
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from alignkit.train.engine import allow_precision


def test_a_bf16_run_may_follow_an_fp32_run_in_the_same_process():
    allow_precision("no")
    assert Accelerator(mixed_precision="no", cpu=True).mixed_precision == "no"
    with pytest.raises(ValueError, match="cannot be changed"):
        Accelerator(mixed_precision="bf16", cpu=True)  # what accelerate alone does
    allow_precision("bf16")
    assert Accelerator(mixed_precision="bf16", cpu=True).mixed_precision == "bf16"
    allow_precision("bf16")  # the same precision: the state stays
    assert AcceleratorState._shared_state.get("_mixed_precision") == "bf16"
    allow_precision("no")
    assert Accelerator(mixed_precision="no", cpu=True).mixed_precision == "no"
