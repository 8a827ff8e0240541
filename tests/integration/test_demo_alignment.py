"""The demo's claims, checked: on the lab, DPO, GRPO and RLOO beat the SFT policy on gold.

The shipped demo pipeline with a shorter schedule (no PPO stage; an RLOO stage
beside GRPO), one seed, the real lab model and data. The evaluation draws
fresh samples from every policy on 330 held-out prompts; each claim is
statistical: the bootstrap 95% interval of the policy's win rate over SFT, by
the gold reward, lies above one half.
"""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest
import yaml

ALIGNED = ("dpo", "grpo", "rloo")


def _short_demo(out_dir) -> dict:
    spec = yaml.safe_load(resources.files("alignkit.pipeline").joinpath("demo.yaml").read_text())
    spec["output_dir"] = str(out_dir)
    stages = spec["stages"]
    del stages["ppo"]
    rloo = copy.deepcopy(stages["grpo"])
    rloo["kind"] = "rloo"
    del rloo["group"]["scale"]  # RLOO's baseline is the mean of the other answers, unscaled
    evaluation = stages.pop("eval")
    stages["rloo"] = rloo
    evaluation["policies"] = {name: "${" + name + "}" for name in ALIGNED}
    for key in ("reward_models", "rm_pairs", "harmful", "harmless"):
        evaluation.pop(key)
    stages["eval"] = evaluation
    return spec


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory, cli):
    root = tmp_path_factory.mktemp("short-demo")
    path = root / "short-demo.yaml"
    path.write_text(yaml.safe_dump(_short_demo(root / "demo"), sort_keys=False))
    result = cli("run", path)
    assert result.returncode == 0, result.stderr
    return json.loads((root / "demo" / "eval" / "evaluation.json").read_text())


@pytest.mark.parametrize("policy", ALIGNED)
def test_the_aligned_policy_beats_sft_on_the_gold_reward(evaluation, policy):
    win = evaluation["policies"][policy]["win_rate"]
    assert win["rate"]["n"] == 330
    assert win["rate"]["low"] > 0.5, win
    assert win["wins"] > win["losses"]
    gold = {name: evaluation["policies"][name]["score"]["value"] for name in ("sft", policy)}
    assert gold[policy] > gold["sft"], gold
