"""RLOO and GRPO on the toy model: they raise a reward, measure KL right, and resume exactly."""

import math
import random

import pytest
import torch
from safetensors.torch import load_file

from alignkit.config import dump_config, validate_config
from alignkit.models.load import init_causal_lm_from_config, load_tokenizer
from alignkit.rollout import generate
from alignkit.rundir import RunDir, read_metrics
from alignkit.train.group import train_group
from alignkit.train.group_config import GRPOConfig, RLOOConfig
from alignkit.train.online_run import OnlineRun

TARGET = "good"


def good_count(prompt, response):
    """The toy reward: how many times the response says the target word."""
    return float(response.split().count(TARGET))


def good_counts(prompts, responses):
    """The same reward, batched."""
    return [good_count(p, r) for p, r in zip(prompts, responses, strict=True)]


REWARD = f"fn:{__name__}:good_count"



@pytest.fixture
def prompts_file(tmp_path, toy_data):
    rows = [{"prompt": r["prompt"]} for r in toy_data.pairs(32, seed=1)]
    return toy_data.write_jsonl(tmp_path / "prompts.jsonl", rows)


def make_config(schema, tmp_path, toy_model, prompts_file, name="run", **sections):
    tokenizer_dir, config = toy_model
    raw = {"output_dir": str(tmp_path / name),
           "model": {"init_from_config": str(config), "tokenizer": str(tokenizer_dir)},
           "data": {"train": str(prompts_file)},
           "reward": {"source": REWARD},
           "rollout": {"max_new_tokens": 8},
           "optim": {"lr": 3e-3, "schedule": "constant"},
           "train": {"prompts_per_iteration": 8, "max_iterations": 20, "save_every": 100}}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return validate_config(schema, raw)


def run_dir(cfg):
    return RunDir.create(cfg.output_dir, dump_config(cfg), overwrite=True)


def sampled_rewards(model, tokenizer_dir, n_prompts=32, seed=123, reward=good_count):
    """Rewards of 4 responses to each of n toy prompts, sampled with a fixed generator."""
    tokenizer = load_tokenizer(tokenizer_dir)
    rng = random.Random(seed)
    prompts = [[1, *tokenizer.encode(f"repeat {rng.choice(['red', 'blue', 'green'])} cat",
                                     add_special_tokens=False)] for _ in range(n_prompts)]
    rollout = generate(model, prompts, max_new_tokens=8, eos_token_id=2, pad_token_id=0,
                       num_samples=4, generator=torch.Generator().manual_seed(seed))
    return torch.tensor([reward("", r) for r in rollout.response_texts(tokenizer)])


def welch_t(after, before):
    return (after.mean() - before.mean()) / math.sqrt(after.var() / len(after)
                                                      + before.var() / len(before))


@pytest.mark.parametrize("schema,method", [(GRPOConfig, "grpo"), (RLOOConfig, "rloo")])
def test_a_few_iterations_raise_the_reward(tmp_path, toy_model, prompts_file, schema, method):
    """20 iterations of 8 prompts x 4 samples (seed 0). Before training the toy policy says
    'good' about 8/28 ≈ 0.29 times in 8 tokens; afterwards, on 128 fresh samples, the
    mean must be at least 0.5 higher and the Welch t-statistic above 4."""
    cfg = make_config(schema, tmp_path, toy_model, prompts_file, group={"k": 4})
    start = init_causal_lm_from_config(toy_model[1], seed=0)
    trained = train_group(cfg, run_dir(cfg), method)
    before, after = sampled_rewards(start, toy_model[0]), sampled_rewards(trained, toy_model[0])
    assert after.mean() - before.mean() > 0.5
    assert welch_t(after, before) > 4
    rows = read_metrics(cfg.output_dir)
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert {"score", "entropy", "clip_fraction", "approx_kl", "response_length",
            "truncated_share", "completions_per_s", "generation_s", "training_s"} <= set(rows[0])
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_batched_function_gives_the_same_run(tmp_path, toy_model, prompts_file):
    """reward.batched calls f(prompts, responses) once; the scores, so the run, are the same."""
    one = make_config(GRPOConfig, tmp_path, toy_model, prompts_file, name="one",
                      train={"max_iterations": 3})
    both = make_config(GRPOConfig, tmp_path, toy_model, prompts_file, name="both",
                       reward={"source": f"fn:{__name__}:good_counts", "batched": True},
                       train={"max_iterations": 3})
    train_group(one, run_dir(one), "grpo")
    train_group(both, run_dir(both), "grpo")
    scores = [[r["score"] for r in read_metrics(c.output_dir)] for c in (one, both)]
    assert scores[0] == scores[1]


@pytest.mark.parametrize("peft", [False, True])
def test_kl_against_the_reference_starts_at_zero_and_grows(tmp_path, toy_model, prompts_file,
                                                          peft):
    """The reference is the starting policy (a frozen copy, or the LoRA adapter switched off),
    so at the first iteration every KL estimate is exactly 0; training moves it away."""
    cfg = make_config(GRPOConfig, tmp_path, toy_model, prompts_file,
                      kl={"coef": 0.05}, peft={"enabled": peft, "r": 4},
                      optim={"lr": 2e-2 if peft else 3e-3}, train={"max_iterations": 8})
    train_group(cfg, run_dir(cfg), "grpo")
    rows = read_metrics(cfg.output_dir)
    assert rows[0]["kl"] == 0.0 and rows[0]["kl_k1"] == 0.0 and rows[0]["kl_loss"] == 0.0
    assert rows[-1]["kl"] > 0.01
    assert all(r["kl_coef"] == 0.05 for r in rows)


def test_rloo_measures_the_kl_it_puts_in_the_reward(tmp_path, toy_model, prompts_file):
    """With the KL in the reward (RLOO's default placement) it is measured and logged too;
    k3 is never negative, and positive once the policy has moved."""
    cfg = make_config(RLOOConfig, tmp_path, toy_model, prompts_file,
                      kl={"coef": 0.1, "estimator": "k3"}, train={"max_iterations": 6})
    train_group(cfg, run_dir(cfg), "rloo")
    rows = read_metrics(cfg.output_dir)
    assert rows[0]["kl"] == 0.0 and rows[-1]["kl"] > 0
    assert "kl_loss" not in rows[-1]


class Crash(Exception):
    pass


def test_a_crash_then_resume_ends_with_the_same_weights(tmp_path, toy_model, prompts_file,
                                                       monkeypatch):
    """Several updates per batch (2 epochs x 2 minibatches, so the shuffles matter), top-p
    sampling, score normalisation and a KL term: 8 iterations with a checkpoint every 3.
    The run crashes after iteration 5 and resumes from iteration 3; its final weights and
    its metrics must equal those of a run that never stopped."""
    sections = dict(update={"epochs": 2, "minibatches": 2}, rollout={"top_p": 0.9},
                    reward={"normalize": True}, kl={"coef": 0.05},
                    train={"max_iterations": 8, "save_every": 3})
    full = make_config(GRPOConfig, tmp_path, toy_model, prompts_file, name="full", **sections)
    train_group(full, run_dir(full), "grpo")

    cut = make_config(GRPOConfig, tmp_path, toy_model, prompts_file, name="cut", **sections)
    finish = OnlineRun.finish

    def crash_after_five(self, batch, metrics, loss):
        stepped = finish(self, batch, metrics, loss)
        if self.engine.state.step == 5:
            raise Crash
        return stepped

    monkeypatch.setattr(OnlineRun, "finish", crash_after_five)
    with pytest.raises(Crash):
        train_group(cut, run_dir(cut), "grpo")
    monkeypatch.setattr(OnlineRun, "finish", finish)
    resumed = RunDir.create(cut.output_dir, dump_config(cut), resume=True)
    train_group(cut, resumed, "grpo")

    a = load_file(str(tmp_path / "full" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "final" / "model.safetensors"))
    assert [name for name in a if not torch.equal(a[name], b[name])] == []
    keys = ("step", "score", "kl", "loss", "approx_kl")
    full_rows = [{k: r[k] for k in keys} for r in read_metrics(full.output_dir)]
    cut_rows = [{k: r[k] for k in keys} for r in read_metrics(cut.output_dir)]
    assert cut_rows == full_rows


def test_groups_need_two_samples(tmp_path, toy_model, prompts_file):
    from alignkit.errors import ConfigError

    with pytest.raises(ConfigError, match="group.k"):
        make_config(GRPOConfig, tmp_path, toy_model, prompts_file, group={"k": 1})


def test_too_few_prompts_for_one_iteration(tmp_path, toy_model, prompts_file):
    from alignkit.errors import ConfigError

    cfg = make_config(GRPOConfig, tmp_path, toy_model, prompts_file,
                      train={"prompts_per_iteration": 40})
    with pytest.raises(ConfigError, match=r"has 32 usable prompts, fewer than one iteration "
                                          r"takes \(40"):
        train_group(cfg, run_dir(cfg), "grpo")
