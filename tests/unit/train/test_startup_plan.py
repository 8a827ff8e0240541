"""The plan a training command prints at start-up: its lines, its event, and its failures."""

import json

from alignkit.plan.catalogue import Device
from alignkit.rundir import RunDir, read_events
from alignkit.train.dpo_config import DPOConfig
from alignkit.train.sft_config import SFTConfig
from alignkit.train.startup_plan import announce_plan, plan_fields, plan_lines, plan_run

TINY = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
            vocab_size=96)
MIB = 2**20


def _model_dir(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps(TINY))
    return str(tmp_path / "model")


def _sft(tmp_path, **train):
    return SFTConfig.model_validate({
        "model": {"path": _model_dir(tmp_path)}, "data": {"train": "sft.jsonl", "max_length": 64},
        "train": {"batch_size": 4, **train}})


def test_a_plan_the_planner_cannot_make_is_one_line_and_an_event(tmp_path, capsys):
    cfg = DPOConfig.model_validate({"model": {"path": _model_dir(tmp_path)},
                                    "data": {"train": "sets.jsonl"}, "loss": {"type": "rrhf"}})
    run = RunDir.create(tmp_path / "run", "x: 1\n")
    assert announce_plan(cfg, "dpo", run) is None
    reason = "the planner does not model rrhf (ranked sets of responses)"
    assert capsys.readouterr().err == f"plan: skipped ({reason})\n"
    [event] = read_events(run.path)
    assert (event["kind"], event["message"], event["skipped"]) == ("plan", f"skipped: {reason}",
                                                                   True)


def test_an_unexpected_error_is_reported_by_type_and_the_run_goes_on(tmp_path, capsys,
                                                                      monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no shapes today")

    monkeypatch.setattr("alignkit.train.startup_plan.plan_run", broken)
    run = RunDir.create(tmp_path / "run", "x: 1\n")
    assert announce_plan(_sft(tmp_path), "sft", run) is None
    assert capsys.readouterr().err == "plan: skipped (RuntimeError: no shapes today)\n"


def test_train_plan_false_prints_and_logs_nothing(tmp_path, capsys):
    run = RunDir.create(tmp_path / "run", "x: 1\n")
    assert announce_plan(_sft(tmp_path, plan=False), "sft", run) is None
    assert capsys.readouterr().err == "" and read_events(run.path) == []


def test_lines_name_the_peak_phase_and_its_three_largest_parts(tmp_path):
    """Full fp32 SFT of 98,624 parameters, batch 4 x 64 tokens: the backward phase peaks,
    and the 4 x 64 x 96 fp32 logits (96 KiB) and their gradient are two of its parts."""
    plan = plan_run(_sft(tmp_path), "sft", device=Device("box", 64 * MIB, None, None, 0))
    parts = sorted(((b, n) for n, b in plan.memory.components.items() if b), reverse=True)
    assert plan.memory.peak_phase == "backward"
    assert plan.memory.components["weights"] == 98_624 * 4
    assert plan.memory.components["logits"] == 2 * 4 * 64 * 96 * 4
    labels = {"activations": "activations", "optimizer": "optimizer states",
              "logits": "logits", "weights": "weights"}
    expected = ", ".join(f"{labels[n]} {b / MIB:.1f} MiB" for b, n in parts[:3])
    assert plan_lines(plan) == [
        plan.summary(),
        f"plan: peak at the backward phase: {expected} (alignkit plan shows every part and "
        "phase)"]
    fields = plan_fields(plan)
    assert fields["peak_bytes"] == sum(v for k, v in fields.items()
                                       if k.endswith("_bytes") and k not in (
                                           "peak_bytes", "runtime_bytes",
                                           "device_memory_bytes"))
    assert (fields["fits"], fields["device_memory_bytes"]) == (True, 64 * MIB)
