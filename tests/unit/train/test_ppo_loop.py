"""PPO on the toy model: learning, the KL controller's wiring, Safe-RLHF, the critic, resume."""

import itertools
import math

import pytest
import torch
from safetensors.torch import load_file

from alignkit.config import validate_config
from alignkit.models.load import init_causal_lm_from_config
from alignkit.rundir import RunDir, read_metrics
from alignkit.train.online_run import OnlineRun
from alignkit.train.ppo import train_ppo
from alignkit.train.ppo_config import PPOConfig

from .test_group_loop import make_config, run_dir, sampled_rewards, welch_t


def good_count(prompt, response):
    """Reward: how many times the response says 'good'."""
    return float(response.split().count("good"))


def good_or_bad(prompt, response):
    """A reward that also pays for the harmful word 'bad'."""
    words = response.split()
    return float(words.count("good") + 2 * words.count("bad"))


def bad_count(prompt, response):
    """Cost: how many times the response says 'bad'."""
    return float(response.split().count("bad"))


def fn(name):
    return f"fn:{__name__}:{name}"



@pytest.fixture
def prompts_file(tmp_path, toy_data):
    rows = [{"prompt": r["prompt"]} for r in toy_data.pairs(64, seed=1)]
    return toy_data.write_jsonl(tmp_path / "prompts.jsonl", rows)


def ppo_config(tmp_path, toy_model, prompts_file, name="run", **sections):
    base = dict(reward={"source": fn("good_count")},
                train={"prompts_per_iteration": 32, "max_iterations": 15},
                update={"epochs": 2, "minibatches": 2},
                kl={"init_coef": 0.02, "target": 2.0, "horizon": 1000})
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return make_config(PPOConfig, tmp_path, toy_model, prompts_file, name=name, **base)


def test_ppo_raises_the_reward(tmp_path, toy_model, prompts_file):
    """15 iterations of 32 prompts (seed 0); on 128 fresh samples the mean reward must rise by
    more than 0.5 'good' per response, with a Welch t-statistic above 4."""
    cfg = ppo_config(tmp_path, toy_model, prompts_file)
    start = init_causal_lm_from_config(toy_model[1], seed=0)
    trained = train_ppo(cfg, run_dir(cfg))
    before, after = sampled_rewards(start, toy_model[0]), sampled_rewards(trained, toy_model[0])
    assert after.mean() - before.mean() > 0.5
    assert welch_t(after, before) > 4
    rows = read_metrics(cfg.output_dir)
    assert {"score", "kl", "kl_coef", "entropy", "clip_fraction", "approx_kl", "value_loss",
            "explained_variance", "response_length", "truncated_share", "tokens_per_s",
            "generation_s", "training_s"} <= set(rows[0])


@pytest.mark.parametrize("warmup", [0, 96])
def test_adaptive_controller_follows_its_rule(tmp_path, toy_model, prompts_file, warmup):
    """Each iteration's coefficient is the previous one times 1 + clip(KL/target - 1, ±0.2)
    · 32 / horizon (32 responses per iteration, horizon 1000, target 2): e.g. a KL of 0 gives
    coef · (1 - 0.2 · 0.032) = coef · 0.9936. With kl.warmup 96 it stays 0.02 through the
    first three iterations unless one's KL reaches 0.8 · 2 = 1.6."""
    cfg = ppo_config(tmp_path, toy_model, prompts_file, train={"max_iterations": 6},
                     kl={"warmup": warmup})
    train_ppo(cfg, run_dir(cfg))
    rows = read_metrics(cfg.output_dir)
    assert rows[0]["kl_coef"] == 0.02
    engaged = False
    for seen, (before, after) in enumerate(itertools.pairwise(rows), start=1):
        engaged = engaged or seen * 32 > warmup or before["kl"] >= 1.6
        error = min(max(before["kl"] / 2.0 - 1, -0.2), 0.2) if engaged else 0.0
        assert after["kl_coef"] == pytest.approx(before["kl_coef"] * (1 + error * 32 / 1000),
                                                 rel=1e-12)
    assert rows[0]["kl"] == 0.0  # the reference is the starting policy
    if warmup:
        assert rows[1]["kl_coef"] == 0.02
    assert rows[-1]["kl_coef"] != 0.02


def test_fixed_controller_keeps_its_coefficient(tmp_path, toy_model, prompts_file):
    cfg = ppo_config(tmp_path, toy_model, prompts_file, kl={"controller": "fixed"},
                     train={"max_iterations": 3})
    train_ppo(cfg, run_dir(cfg))
    assert [r["kl_coef"] for r in read_metrics(cfg.output_dir)] == [0.02] * 3


def test_zero_initialised_critic_explains_nothing_at_first(tmp_path, toy_model, prompts_file):
    """Values start at exactly 0, so the first explained variance is 1 - Var(R)/Var(R) = 0;
    the separate critic has its own backbone, which trains (its weights change)."""
    for value_model in ("shared", "separate"):
        cfg = ppo_config(tmp_path, toy_model, prompts_file, name=value_model,
                         value={"model": value_model}, train={"max_iterations": 2,
                                                              "save_every": 2})
        train_ppo(cfg, run_dir(cfg))
        assert read_metrics(cfg.output_dir)[0]["explained_variance"] == 0.0
    saved = load_file(str(tmp_path / "separate" / "checkpoints" / "step-00000002" /
                          "trainable.safetensors"))
    critic = {k: v for k, v in saved.items() if k.startswith("critic_backbone.")}
    start = init_causal_lm_from_config(toy_model[1], seed=0).base_model.state_dict()
    assert critic and any(not torch.equal(v, start[k.removeprefix("critic_backbone.")])
                          for k, v in critic.items())
    assert saved["head.linear.weight"].abs().sum() > 0


def test_early_stop_on_approximate_kl(tmp_path, toy_model, prompts_file):
    """With a bound of 1e-9 nats the first minibatch (the sampling policy itself, approximate
    KL ~0) is applied and the second, computed after one update, stops the batch."""
    cfg = ppo_config(tmp_path, toy_model, prompts_file, update={"max_approx_kl": 1e-9},
                     train={"max_iterations": 2})
    train_ppo(cfg, run_dir(cfg))
    for row in read_metrics(cfg.output_dir):
        assert row["updates"] == 1.0 and row["early_stopped"] == 1.0


def test_cost_constraint_lowers_the_cost(tmp_path, toy_model, prompts_file):
    """The reward pays for 'bad' twice as much as for 'good'; the cost counts 'bad'. With
    constraint.threshold 0.1 the multiplier follows ln λ ← ln λ + 0.5 · λ · (cost - 0.1)
    from λ = 1, and the constrained policy says 'bad' less often than the unconstrained one
    (128 fresh samples each: at least 0.5 fewer per response, Welch t above 4)."""
    free = ppo_config(tmp_path, toy_model, prompts_file, name="free",
                      reward={"source": fn("good_or_bad")})
    safe = ppo_config(tmp_path, toy_model, prompts_file, name="safe",
                      reward={"source": fn("good_or_bad")},
                      constraint={"cost": fn("bad_count"), "threshold": 0.1, "lambda_lr": 0.5})
    free_policy = train_ppo(free, run_dir(free))
    safe_policy = train_ppo(safe, run_dir(safe))
    log_lambda = 0.0
    for row in read_metrics(safe.output_dir):
        log_lambda += 0.5 * math.exp(log_lambda) * (row["cost"] - 0.1)
        assert row["lambda"] == pytest.approx(math.exp(log_lambda), rel=1e-9)
    free_bad = sampled_rewards(free_policy, toy_model[0], reward=bad_count)
    safe_bad = sampled_rewards(safe_policy, toy_model[0], reward=bad_count)
    assert free_bad.mean() - safe_bad.mean() > 0.5
    assert welch_t(free_bad, safe_bad) > 4


def test_a_crash_then_resume_ends_with_the_same_weights(tmp_path, toy_model, prompts_file,
                                                       monkeypatch):
    """Adaptive controller, a constraint, score normalisation: 6 iterations, checkpoints
    every 2; a crash after iteration 3 resumes from 2 and ends bit for bit where an
    uninterrupted run ends, with the same coefficient and multiplier history."""
    sections = dict(constraint={"cost": fn("bad_count"), "threshold": 0.1},
                    reward={"normalize": True}, train={"max_iterations": 6, "save_every": 2})
    full = ppo_config(tmp_path, toy_model, prompts_file, name="full", **sections)
    train_ppo(full, run_dir(full))
    cut = ppo_config(tmp_path, toy_model, prompts_file, name="cut", **sections)
    finish = OnlineRun.finish

    def crash_after_three(self, batch, metrics, loss):
        stepped = finish(self, batch, metrics, loss)
        if self.engine.state.step == 3:
            raise RuntimeError("killed")
        return stepped

    monkeypatch.setattr(OnlineRun, "finish", crash_after_three)
    with pytest.raises(RuntimeError, match="killed"):
        train_ppo(cut, run_dir(cut))
    monkeypatch.setattr(OnlineRun, "finish", finish)
    from alignkit.config import dump_config

    train_ppo(cut, RunDir.create(cut.output_dir, dump_config(cut), resume=True))
    a = load_file(str(tmp_path / "full" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "final" / "model.safetensors"))
    assert [name for name in a if not torch.equal(a[name], b[name])] == []
    keys = ("step", "kl_coef", "lambda", "score", "value_loss")
    assert [{k: r[k] for k in keys} for r in read_metrics(cut.output_dir)] == \
        [{k: r[k] for k in keys} for r in read_metrics(full.output_dir)]


def test_adaptive_controller_needs_a_target(tmp_path, toy_model, prompts_file):
    from alignkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"kl.target"):
        validate_config(PPOConfig, {"model": {"path": "x"}, "data": {"train": "p.jsonl"},
                                    "reward": {"source": "gold"}, "kl": {"target": None}})
