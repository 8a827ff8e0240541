"""The lab's claims, checked: DPO and PPO beat the SFT policy on the gold reward,
and PPO's adaptive controller holds the KL near its target.

The shipped demo pipeline without GRPO (the lab, SFT, a reward model, DPO, PPO
and an evaluation on the held-out prompts only), one seed, the real lab model
and data, run once for the module. PPO's controller and learning rate are the
demo's, set here too so that the test's claims do not move with the demo:
the adaptive controller at target 3, from a coefficient of 0.2. The evaluation
draws fresh samples from the SFT, DPO and PPO policies on 330 held-out
prompts. The claims are statistical:
the bootstrap 95% interval of DPO's win rate over SFT, by the gold reward, lies
above one half; PPO (rewarded by the reward model, judged by gold) wins at
least 60% with its interval above one half; and PPO's KL, averaged over blocks
of 10 iterations after the warm-up, stays within ±50% of its target.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
import yaml

PPO_KL = {"controller": "adaptive", "init_coef": 0.2, "target": 3.0, "horizon": 128,
          "warmup": 320}
PPO_ITERATIONS = 40
BLOCK = 10
WARM_UP = 20  # iterations: the controller's hold (10) and the policy's first climb


def _short_demo(out_dir) -> dict:
    spec = yaml.safe_load(resources.files("alignkit.pipeline").joinpath("demo.yaml").read_text())
    spec["output_dir"] = str(out_dir)
    stages = spec["stages"]
    del stages["grpo"]
    stages["ppo"]["kl"] = PPO_KL
    stages["ppo"]["optim"]["lr"] = 2.0e-4
    stages["ppo"]["train"]["max_iterations"] = PPO_ITERATIONS
    stages["eval"]["policies"] = {"dpo": "${dpo}", "ppo": "${ppo}"}
    for key in ("reward_models", "rm_pairs", "harmful", "harmless"):
        stages["eval"].pop(key)
    return spec


@pytest.fixture(scope="module")
def demo(tmp_path_factory, cli):
    root = tmp_path_factory.mktemp("short-demo")
    path = root / "short-demo.yaml"
    path.write_text(yaml.safe_dump(_short_demo(root / "demo"), sort_keys=False))
    result = cli("run", path)
    assert result.returncode == 0, result.stderr
    return root / "demo"


def _evaluation(demo) -> dict:
    return json.loads((demo / "eval" / "evaluation.json").read_text())


def test_dpo_beats_sft_on_the_gold_reward(demo):
    evaluation = _evaluation(demo)
    win = evaluation["policies"]["dpo"]["win_rate"]
    assert win["rate"]["n"] == 330
    assert win["rate"]["low"] > 0.5, win
    assert win["wins"] > win["losses"]
    gold = {name: evaluation["policies"][name]["score"]["value"] for name in ("sft", "dpo")}
    assert gold["dpo"] > gold["sft"], gold


def test_ppo_beats_sft_on_the_gold_reward(demo):
    """Measured on the development machine: 0.632 [0.588, 0.677] (DPO: 0.676)."""
    evaluation = _evaluation(demo)
    win = evaluation["policies"]["ppo"]["win_rate"]
    assert win["rate"]["n"] == 330
    assert win["rate"]["value"] >= 0.6, win
    assert win["rate"]["low"] > 0.5, win
    gold = {name: evaluation["policies"][name]["score"]["value"] for name in ("sft", "ppo")}
    assert gold["ppo"] > gold["sft"], gold


def test_ppo_kl_stays_within_half_of_its_target_after_the_warm_up(demo):
    """The first 20 iterations are the warm-up: 10 with the coefficient held (kl.warmup 320
    responses = 10 iterations of 32) and 10 in which the KL first climbs, and may overshoot,
    as the policy leaves the reference. Each later block of 10 iterations has a mean KL in
    [1.5, 4.5] for the target 3. Measured on the development machine: 2.35 and 2.31;
    earlier labs and other controller settings are in docs/online-rl.md."""
    rows = [json.loads(line) for line in (demo / "ppo" / "metrics.jsonl").read_text().splitlines()]
    kls = [row["kl"] for row in rows if "kl" in row]
    assert len(kls) == PPO_ITERATIONS
    target = PPO_KL["target"]
    blocks = [sum(kls[i:i + BLOCK]) / BLOCK for i in range(WARM_UP, PPO_ITERATIONS, BLOCK)]
    assert len(blocks) == 2
    assert all(0.5 * target <= kl <= 1.5 * target for kl in blocks), blocks
