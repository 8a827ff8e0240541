"""The demo's claim, checked: on the lab, DPO beats the SFT policy on the gold reward.

The shipped demo pipeline with a shorter schedule (the lab, SFT, DPO and the
evaluation; no reward model or online RL), one seed, the real lab model and
data. The evaluation draws fresh samples from both policies on 330 held-out
prompts; the claim is statistical: the bootstrap 95% interval of DPO's win
rate over SFT, by the gold reward, lies above one half.
"""

from __future__ import annotations

import json
from importlib import resources

import yaml


def _short_demo(out_dir) -> dict:
    spec = yaml.safe_load(resources.files("alignkit.pipeline").joinpath("demo.yaml").read_text())
    spec["output_dir"] = str(out_dir)
    stages = spec["stages"]
    for name in ("rm", "ppo", "grpo"):
        del stages[name]
    stages["eval"]["policies"] = {"dpo": "${dpo}"}
    for key in ("reward_models", "rm_pairs", "harmful", "harmless"):
        stages["eval"].pop(key)
    return spec


def test_dpo_beats_sft_on_the_gold_reward(tmp_path, cli):
    path = tmp_path / "short-demo.yaml"
    path.write_text(yaml.safe_dump(_short_demo(tmp_path / "demo"), sort_keys=False))
    result = cli("run", path)
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((tmp_path / "demo" / "eval" / "evaluation.json").read_text())
    win = evaluation["policies"]["dpo"]["win_rate"]
    assert win["rate"]["n"] == 330
    assert win["rate"]["low"] > 0.5, win
    assert win["wins"] > win["losses"]
    gold = {name: evaluation["policies"][name]["score"]["value"] for name in ("sft", "dpo")}
    assert gold["dpo"] > gold["sft"], gold
