"""Predicted against measured peak memory on CPU, with the benchmark's own harness.

Each case trains a small random model with the real trainer in a fresh process
(``benchmarks/planner_check.py``) and compares the planner's peak with the
peak resident memory above the process's baseline, glibc's mmap threshold
fixed so that the resident size follows live tensors. The bound is +-20%.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "planner_check.py"
pytestmark = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                                reason="measures through Linux's /proc")


def _benchmark():
    spec = importlib.util.spec_from_file_location("planner_check", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _check(name: str) -> None:
    bench = _benchmark()
    row = bench.compare(bench.CASES_BY_NAME[name], default_allocator=False)
    assert abs(row["live_ratio"] - 1) <= bench.BOUND, row


def test_sft_peak_is_predicted_within_bound():
    """SFT of a 7M-parameter model, batch 4 x 256 tokens, fp32 (about 270 MiB)."""
    _check("sft-7m")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rm-7m-lora", "dpo-7m-copy", "dpo-7m-lora-adapter",
                                  "simpo-7m", "grpo-7m", "ppo-7m-lora",
                                  "dpo-30m-ckpt-in-backward"])
def test_other_methods_are_predicted_within_bound(name):
    _check(name)
