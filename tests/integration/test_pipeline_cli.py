"""``alignkit run`` and ``alignkit demo`` as a user runs them: a tiny real pipeline, run twice."""

from __future__ import annotations

import json

import pytest

from alignkit.rundir import read_metrics

PIPELINE = """\
output_dir: {out}
seed: 0
stages:
  lab:
    kind: lab-data
    seed: ${{seed}}
    size: small
  sft:
    kind: sft
    model:
      init_from_config: ${{lab}}/model/config.json
      tokenizer: ${{lab}}/model
    data: {{train: "${{lab}}/sft.jsonl", max_length: 48}}
    optim: {{lr: 3.0e-3, schedule: constant}}
    train: {{batch_size: 8, max_steps: 3, log_every: 1, seed: "${{seed}}"}}
  dpo:
    kind: dpo
    model: {{path: "${{sft}}"}}
    data: {{train: "${{lab}}/pairs.jsonl", max_length: 48, max_prompt_length: 32}}
    optim: {{lr: 1.0e-3, schedule: constant}}
    train: {{batch_size: 4, max_steps: 2, log_every: 1}}
"""
# Smaller than the lab's own model, so the test trains in seconds; the vocabulary is sized
# from the tokenizer by the trainer.
TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
        "num_key_value_heads": 2, "max_position_embeddings": 128, "tie_word_embeddings": True,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}


@pytest.fixture
def pipeline_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(PIPELINE.format(out=tmp_path / "runs"))
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    return path


def _statuses(out):
    rows = json.loads((out / "pipeline.json").read_text())["stages"]
    return [(row["name"], row["kind"], row["status"]) for row in rows]


def test_a_pipeline_runs_then_skips_then_plans_a_change(pipeline_file, tmp_path, cli):
    out = tmp_path / "runs"
    tiny = f"stages.sft.model.init_from_config={tmp_path / 'tiny.json'}"
    first = cli("run", pipeline_file, tiny)
    assert first.returncode == 0, first.stderr
    assert _statuses(out) == [("lab", "lab-data", "done"), ("sft", "sft", "done"),
                              ("dpo", "dpo", "done")]
    assert (out / "lab" / "lab.json").is_file()
    assert (out / "sft" / "final" / "model.safetensors").is_file()
    assert [row["step"] for row in read_metrics(out / "dpo")] == [1, 2]
    assert f"init_from_config: {tmp_path / 'tiny.json'}" in (out / "pipeline.yaml").read_text()
    assert "[2/3] sft (sft): running (not run before)" in first.stderr
    assert "[3/3] dpo (dpo): running (not run before)" in first.stderr

    again = cli("run", pipeline_file, tiny)
    assert again.returncode == 0, again.stderr
    assert [line for line in again.stderr.splitlines() if line.startswith("[")] == [
        "[1/3] lab (lab-data): skipped, done earlier with the same config",
        "[2/3] sft (sft): skipped, done earlier with the same config",
        "[3/3] dpo (dpo): skipped, done earlier with the same config"]
    assert "run directory" not in again.stderr  # no trainer was started
    assert [line.split()[:3] for line in again.stdout.splitlines()
            if line.strip().startswith(("lab", "sft", "dpo"))] == [
        ["lab", "lab-data", "skipped"], ["sft", "sft", "skipped"], ["dpo", "dpo", "skipped"]]

    before = (out / "pipeline.json").read_bytes()
    plan = cli("run", pipeline_file, tiny, "stages.dpo.loss.beta=0.2", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    rows = [line.strip().split(None, 3) for line in plan.stdout.splitlines()
            if line.strip().startswith(("lab ", "sft ", "dpo "))]
    assert rows == [["lab", "lab-data", "skip", "done earlier with the same config"],
                    ["sft", "sft", "skip", "done earlier with the same config"],
                    ["dpo", "dpo", "run", "its configuration changed since it ran"]]
    assert (out / "pipeline.json").read_bytes() == before


def test_a_bad_override_names_stage_and_key_before_anything_runs(pipeline_file, tmp_path, cli):
    result = cli("run", pipeline_file, "stages.dpo.loss.betta=0.2")
    assert result.returncode == 2
    assert "stage 'dpo': invalid configuration:" in result.stderr
    assert "loss.betta = 0.2 (override stages.dpo.loss.betta=0.2): 'betta' is not an option " \
           "of loss type 'dpo' (did you mean 'loss.beta'?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_the_demo_plans_every_stage(tmp_path, cli):
    pytest.importorskip("alignkit.pipeline.eval_stage")
    result = cli("demo", "--dry-run", "-o", tmp_path / "demo", "--seed", "2")
    assert result.returncode == 0, result.stderr
    rows = [line.strip().split(None, 3) for line in result.stdout.splitlines()
            if line.strip().split(" ")[0] in ("lab", "sft", "rm", "dpo", "ppo", "grpo", "eval")]
    assert rows == [
        [name, kind, "run", "not run before"] for name, kind in [
        ("lab", "lab-data"), ("sft", "sft"), ("rm", "rm"), ("dpo", "dpo"), ("ppo", "ppo"),
        ("grpo", "grpo"), ("eval", "eval")]]
    assert not (tmp_path / "demo").exists()


def test_the_demo_end_to_end_with_tiny_settings(tmp_path, cli):
    """Every demo stage for real (a tiny model, a few steps each), then the summary and report."""
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    out = tmp_path / "demo"
    result = cli("demo", "-o", out, "stages.lab.size=small",
                 f"stages.sft.model.init_from_config={tmp_path / 'tiny.json'}",
                 "stages.sft.train.max_steps=3", "stages.rm.train.max_steps=2",
                 "stages.dpo.train.max_steps=2", "stages.ppo.train.max_iterations=1",
                 "stages.ppo.train.prompts_per_iteration=8",
                 "stages.grpo.train.max_iterations=1", "stages.grpo.train.prompts_per_iteration=4",
                 "stages.eval.generation.max_new_tokens=8")
    assert result.returncode == 0, result.stderr
    assert _statuses(out) == [("lab", "lab-data", "done"), ("sft", "sft", "done"),
                              ("rm", "rm", "done"), ("dpo", "dpo", "done"),
                              ("ppo", "ppo", "done"), ("grpo", "grpo", "done"),
                              ("eval", "eval", "done")]
    evaluation = json.loads((out / "eval" / "evaluation.json").read_text())
    lines = [line.strip() for line in result.stdout.splitlines()]
    summary = lines[lines.index("evaluation: judge gold, 66 prompts, 95% intervals"):]
    for name in ("dpo", "ppo", "grpo"):
        win = evaluation["policies"][name]["win_rate"]["rate"]["value"]
        row = next(line.split() for line in summary if line.startswith(name + " "))
        assert row[4] == f"{win:.2f}"  # gold total [low, high], then the win rate
    rm_row = next(line.split() for line in summary if line.startswith("rm "))
    assert rm_row[-1] == str(evaluation["reward_models"]["rm"]["pairs"]) == "80"
    assert lines[-1] == f"report: {out / 'report.html'}"
    assert (out / "report.html").is_file()
