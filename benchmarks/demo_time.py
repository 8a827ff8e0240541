"""`alignkit demo` against its budget: wall time and peak resident memory.

Runs the shipped demo from scratch several times (each in a fresh directory and
a fresh process), and prints per run the wall time, the peak resident set size
of the process (``ru_maxrss`` from ``wait4``: the whole demo runs in that one
process) and the DPO and PPO win rates over SFT with the reward model's
accuracy, then the medians against the budget of 5 minutes and 4 GB.

    .venv/bin/python benchmarks/demo_time.py                   # 3 runs, seed 0
    .venv/bin/python benchmarks/demo_time.py --seeds 0,1,2      # one run per seed
    .venv/bin/python benchmarks/demo_time.py --runs 1 --keep runs/bench

Quote the load average with the numbers: the demo is CPU-bound, and anything
else running on the machine lengthens it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_SECONDS = 300.0
BUDGET_GB = 4.0


def run_demo(out_dir: Path, seed: int) -> dict:
    """One demo run: wall seconds, peak RSS in GB, and the evaluation's headline figures."""
    alignkit = Path(sys.executable).with_name("alignkit")
    command = [str(alignkit), "demo", "-o", str(out_dir), "--seed", str(seed)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    error = process.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"demo failed (seed {seed}):\n{error[-2000:]}")
    return {"seed": seed, "seconds": seconds, "peak_gb": usage.ru_maxrss / 1024**2,
            **headline(out_dir / "eval" / "evaluation.json")}


def headline(path: Path) -> dict:
    """Win rates over the baseline with their lower bounds, and the reward models' accuracy."""
    result = json.loads(path.read_text())
    figures = {}
    for name, policy in result["policies"].items():
        if not policy.get("win_rate"):  # the baseline
            continue
        rate = policy["win_rate"]["rate"]
        figures[f"{name}_win"] = (rate["value"], rate["low"], rate["high"])
    for name, model in result.get("reward_models", {}).items():
        figures[f"{name}_accuracy"] = model["accuracy"]["value"]
    return figures


def describe(row: dict) -> str:
    parts = [f"seed {row['seed']}", f"{row['seconds']:.1f} s", f"{row['peak_gb']:.2f} GB"]
    for key, value in row.items():
        if key.endswith("_win"):
            parts.append(f"{key[:-4]} win {value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]")
        elif key.endswith("_accuracy"):
            parts.append(f"{key[:-9]} accuracy {value:.3f}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs when --seeds is not given")
    parser.add_argument("--seeds", help="comma-separated seeds, one run each")
    parser.add_argument("--keep", type=Path, help="keep the run directories under this one")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [0] * args.runs
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        rows = []
        for index, seed in enumerate(seeds):
            rows.append(run_demo(root / f"demo-{index}-seed{seed}", seed))
            print(describe(rows[-1]), flush=True)
    seconds = statistics.median(r["seconds"] for r in rows)
    peak = statistics.median(r["peak_gb"] for r in rows)
    print(f"median of {len(rows)}: {seconds:.1f} s ({seconds / BUDGET_SECONDS:.2f} of the "
          f"{BUDGET_SECONDS:.0f} s budget), peak RSS {peak:.2f} GB ({peak / BUDGET_GB:.2f} of "
          f"the {BUDGET_GB:.0f} GB budget)")


if __name__ == "__main__":
    main()
