"""The demo pipeline shipped in the package, and its copy in examples/."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignkit.pipeline.spec import load_pipeline

REPO = Path(__file__).resolve().parents[3]
PACKAGED = REPO / "src" / "alignkit" / "pipeline" / "demo.yaml"
EXAMPLE = REPO / "examples" / "demo.yaml"


def test_the_example_is_the_packaged_demo():
    assert EXAMPLE.read_bytes() == PACKAGED.read_bytes()


def test_every_demo_stage_validates_without_running(tmp_path):
    pytest.importorskip("alignkit.pipeline.eval_stage")
    pipeline = load_pipeline(PACKAGED, ["seed=5"], output_dir=tmp_path / "demo")
    out = (tmp_path / "demo").as_posix()
    stages = {stage.name: stage for stage in pipeline.stages}
    assert [(s.name, s.kind.name) for s in pipeline.stages] == [
        ("lab", "lab-data"), ("sft", "sft"), ("rm", "rm"), ("dpo", "dpo"), ("ppo", "ppo"),
        ("grpo", "grpo"), ("eval", "eval")]
    assert stages["lab"].config.seed == 5
    assert stages["sft"].config.model.init_from_config == f"{out}/lab/model/config.json"
    assert stages["sft"].config.train.seed == 5
    assert stages["rm"].config.model.path == f"{out}/sft"
    assert stages["ppo"].config.reward.source == f"{out}/rm"
    assert stages["ppo"].config.reward.log_gold is True
    assert stages["grpo"].config.reward.source == f"{out}/rm"
    assert stages["grpo"].config.group.k == 4
    assert stages["eval"].config.policies == {"dpo": f"{out}/dpo", "ppo": f"{out}/ppo",
                                              "grpo": f"{out}/grpo"}
    assert stages["eval"].uses == ("sft", "dpo", "ppo", "grpo", "lab", "rm")
    assert not (tmp_path / "demo").exists()


def test_the_kl_sweep_example_validates_with_four_targets_and_no_penalty(tmp_path):
    pytest.importorskip("alignkit.pipeline.eval_stage")
    pipeline = load_pipeline(REPO / "examples" / "kl-sweep.yaml", [], output_dir=tmp_path / "kl")
    stages = {stage.name: stage for stage in pipeline.stages}
    sweep = [name for name in stages if name.startswith("ppo-")]
    kls = [stages[name].config.kl for name in sweep]
    assert [(kl.controller, kl.target) for kl in kls[:4]] == [
        ("adaptive", 1.0), ("adaptive", 3.0), ("adaptive", 6.0), ("adaptive", 12.0)]
    assert all((kl.horizon, kl.warmup, kl.init_coef) == (128, 320, 0.1) for kl in kls[:4])
    assert (kls[4].controller, kls[4].init_coef) == ("fixed", 0.0)
    # The merge key copies everything else from the first run.
    assert {stages[name].config.optim.lr for name in sweep} == {2.0e-4}
    assert all(stages[name].config.reward.source == f"{(tmp_path / 'kl').as_posix()}/rm"
               for name in sweep)
    assert stages["eval"].uses[:1] == ("sft",)
    assert sorted(stages["eval"].config.policies) == sorted(sweep)
    assert not (tmp_path / "kl").exists()


def test_the_safe_rlhf_example_constrains_one_of_two_runs_with_a_cost_model(tmp_path):
    pytest.importorskip("alignkit.pipeline.eval_stage")
    out = tmp_path / "safe"
    pipeline = load_pipeline(REPO / "examples" / "safe-rlhf.yaml", [], output_dir=out)
    stages = {stage.name: stage for stage in pipeline.stages}
    assert stages["cost"].config.data.train == f"{out.as_posix()}/lab/harm_pairs.jsonl"
    assert stages["ppo"].config.constraint.cost is None
    safe = stages["ppo-safe"].config
    assert safe.constraint.cost == f"{out.as_posix()}/cost"
    assert safe.constraint.threshold < 0
    assert safe.reward == stages["ppo"].config.reward
    assert stages["ppo-safe"].uses == ("sft", "lab", "rm", "cost")
    assert sorted(stages["eval"].config.policies) == ["ppo", "ppo-safe"]
