"""``alignkit sft`` as a user runs it: the start-up memory plan, and TensorBoard tracking."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from alignkit.rundir import read_events, read_metrics

STEPS = 3


def _sft(tmp_path, toy_model, name: str, *overrides: str, env: dict | None = None):
    tokenizer_dir, config = toy_model
    data = tmp_path / "sft.jsonl"
    rows = [{"prompt": f"repeat {c} cat", "completion": f"{c} {c}"}
            for c in ("red", "blue", "green", "red", "blue", "green", "red", "blue")]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    command = [sys.executable, "-m", "alignkit", "sft", f"model.init_from_config={config}",
               f"model.tokenizer={tokenizer_dir}", f"data.train={data}", "data.max_length=32",
               "data.eval_fraction=0.25", f"output_dir={tmp_path / name}", "train.batch_size=2",
               f"train.max_steps={STEPS}", "train.log_every=1", *overrides]
    full_env = dict(os.environ, NO_COLOR="1", COLUMNS="200", OMP_NUM_THREADS="1")
    full_env.pop("ALIGNKIT_PLAN_MEMORY_GIB", None)
    full_env.update(env or {})
    result = subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=600)
    assert result.returncode == 0, result.stderr
    return result, tmp_path / name


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, toy_model):
    """One SFT run with train.trackers=[tensorboard]: (its result, its run directory)."""
    return _sft(tmp_path_factory.mktemp("tracked"), toy_model, "run",
                "train.trackers=[tensorboard]")


def test_the_plan_is_printed_before_training_and_kept_as_an_event(tracked_run, toy_model):
    result, run = tracked_run
    lines = result.stderr.splitlines()
    plan_line = next(line for line in lines if line.startswith("plan: sft on "))
    assert plan_line.startswith(f"plan: sft on {toy_model[1]} (fp32, full, batch 2 x 32 "
                                "tokens): peak ")
    assert "(fits, " in plan_line
    parts = lines[lines.index(plan_line) + 1]
    assert parts.startswith("plan: peak at the backward phase: activations ")
    assert lines.index(plan_line) < next(i for i, line in enumerate(lines)
                                         if line.startswith("done: model in"))
    assert "warning:" not in result.stderr
    [event] = [e for e in read_events(run) if e["kind"] == "plan"]
    assert event["message"] == plan_line
    assert (event["method"], event["reference"], event["peak_phase"], event["fits"]) == \
        ("sft", "none", "backward", True)
    assert event["peak_bytes"] + event["runtime_bytes"] <= event["device_memory_bytes"]


def test_tensorboard_holds_the_scalars_of_metrics_jsonl(tracked_run):
    """TensorBoard stores scalars as float32: each value equals the metrics.jsonl value cast
    to float32, at the same step, for the training rows and the held-out row alike."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, run = tracked_run
    [logdir] = [p for p in (run / "tensorboard").iterdir() if p.is_dir()]
    assert logdir.name == "run" and list(logdir.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(logdir))
    events.Reload()
    metrics = read_metrics(run)
    for key in ("loss", "grad_norm", "lr", "tokens_seen", "eval_loss"):
        logged = [(r["step"], float(np.float32(r[key]))) for r in metrics if key in r]
        assert [(e.step, e.value) for e in events.Scalars(key)] == logged
    assert len(events.Scalars("loss")) == STEPS
    numeric = {k for r in metrics for k, v in r.items() if k not in ("step", "time")
               and isinstance(v, int | float)}
    assert set(events.Tags()["scalars"]) == numeric


def test_a_device_too_small_warns_and_training_still_finishes(tmp_path, toy_model):
    result, run = _sft(tmp_path, toy_model, "run", env={"ALIGNKIT_PLAN_MEMORY_GIB": "0.0001"})
    assert "(DOES NOT FIT by " in result.stderr
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: the predicted peak ")
    assert " exceeds the 0.1 MiB of cpu; the planner's top suggestion: " in warning
    [event] = [e for e in read_events(run) if e["kind"] == "warning"]
    assert f"warning: {event['message']}" == warning
    assert (run / "final" / "config.json").is_file()
    assert [r["step"] for r in read_metrics(run) if "loss" in r] == list(range(1, STEPS + 1))


def test_tensorboard_missing_is_a_config_error_before_the_run_exists(tmp_path, monkeypatch,
                                                                     capsys, toy_model):
    from alignkit.cli import main

    monkeypatch.setattr("alignkit.train.trackers.installed", lambda package: False)
    tokenizer_dir, config = toy_model
    with pytest.raises(SystemExit) as stopped:
        main(["sft", f"model.init_from_config={config}", f"model.tokenizer={tokenizer_dir}",
              "data.train=sft.jsonl", f"output_dir={tmp_path / 'run'}",
              "train.trackers=[tensorboard]"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        "error: train.trackers: tensorboard needs the 'tensorboard' package, which is not "
        "installed; install it with `pip install tensorboard`, or remove it from "
        "train.trackers\n")
    assert not (tmp_path / "run").exists()
