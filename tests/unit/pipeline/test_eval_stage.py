"""The pipeline's eval stage on the small lab with tiny models whose behaviour is known.

One stage run (module fixture) evaluates, against a random baseline ``sft``:
``same`` (the baseline's own directory), ``other`` (other random weights),
``refuser`` (weights built by hand so that every response is the lab's refusal
"sorry , i can not help with that .") and ``foreign`` (another tokenizer). The
reward models are ``rm`` (random) and ``flat`` (a zero reward head: every
reward is 0). Each figure is then recomputed from the recorded responses.
"""

from __future__ import annotations

import io
import itertools
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from alignkit.config import validate_config
from alignkit.errors import ConfigError
from alignkit.pipeline.eval_figures import panel_agreement
from alignkit.pipeline.eval_inputs import spread_indices
from alignkit.pipeline.eval_stage import EvalStageConfig, run_eval_stage

TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=2, tie_word_embeddings=False)
REFUSAL = "sorry , i can not help with that ."
RESAMPLES = 200



def _tiny_config(lab, root: Path) -> Path:
    config = json.loads(lab.model_config.read_text()) | TINY
    path = root / "tiny_config.json"
    path.write_text(json.dumps(config))
    return path


def _save(model, tokenizer, directory: Path) -> str:
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def _refuser(config: Path, tokenizer, prompt_end: int):
    """A causal LM that answers every prompt with REFUSAL, then ends.

    Attention and MLP outputs are zeroed, so the last hidden state is the
    current token's embedding. Each token of the chain (the prompt's last
    token, then the refusal's words) embeds as its own basis vector, and the
    lm_head row of its successor points along it: after the final RMS norm the
    successor's logit is 40 * sqrt(32) ~ 226 and every other logit is 0, so
    sampling at temperature 1 picks the successor with probability ~ 1 - 467 e^-226.
    """
    from alignkit.models.load import init_causal_lm_from_config

    model = init_causal_lm_from_config(config, vocab_size=len(tokenizer), seed=0)
    chain = [prompt_end, *tokenizer.convert_tokens_to_ids(REFUSAL.split()),
             tokenizer.eos_token_id]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.lm_head.weight.zero_()
        for k, (token, successor) in enumerate(itertools.pairwise(chain)):
            model.model.embed_tokens.weight[token, k] = 1.0
            model.lm_head.weight[successor, k] = 40.0
    return model


def _models(lab, root: Path, toy_model) -> dict[str, str]:
    from alignkit.eval.generation import encode_prompts
    from alignkit.eval.settings import GenerationSettings
    from alignkit.lab import read_prompts
    from alignkit.models.load import init_causal_lm_from_config, load_tokenizer
    from alignkit.models.reward import init_reward_model_from_config

    tokenizer = load_tokenizer(lab.model)
    config = _tiny_config(lab, root)
    prompts = [row.prompt for row in read_prompts(lab.eval_prompts)]
    (prompt_end,) = {ids[-1] for ids in encode_prompts(prompts, tokenizer, GenerationSettings())}
    paths = {}
    for name, seed in (("sft", 0), ("other", 1)):
        model = init_causal_lm_from_config(config, vocab_size=len(tokenizer), seed=seed)
        paths[name] = _save(model, tokenizer, root / name)
    paths["refuser"] = _save(_refuser(config, tokenizer, prompt_end), tokenizer,
                             root / "refuser")
    foreign_tokenizer = load_tokenizer(toy_model[0])
    foreign = init_causal_lm_from_config(toy_model[1], vocab_size=len(foreign_tokenizer))
    paths["foreign"] = _save(foreign, foreign_tokenizer, root / "foreign")
    for name, head in (("rm", None), ("flat", 0.0)):
        model = init_reward_model_from_config(config, vocab_size=len(tokenizer), seed=2,
                                              pad_token_id=tokenizer.pad_token_id)
        if head is not None:
            with torch.no_grad():
                model.score.weight.fill_(head)
        paths[name] = _save(model, tokenizer, root / name)
    return paths


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _stage_config(lab, models: dict[str, str], **changes) -> EvalStageConfig:
    data = {
        "baseline": models["sft"],
        "policies": {"same": models["sft"], "other": models["other"],
                     "refuser": models["refuser"], "foreign": models["foreign"]},
        "judge": "gold",
        "prompts": str(lab.eval_prompts),
        "reward_models": {"rm": models["rm"], "flat": models["flat"]},
        "rm_pairs": str(lab.gold_pairs_eval),
        "harmful": str(lab.harmful_eval),
        "harmless": str(lab.harmless_tricky_eval),
        "generation": {"max_new_tokens": 12},
        "resamples": RESAMPLES,
        "device": "cpu",
    }
    return validate_config(EvalStageConfig, data | changes)


@pytest.fixture(scope="module")
def world(tmp_path_factory, toy_model):
    from alignkit.lab import generate_lab

    root = tmp_path_factory.mktemp("eval_stage")
    lab = generate_lab(root / "lab", seed=0, size="small")
    models = _models(lab, root, toy_model)
    out = root / "eval"
    printed = io.StringIO()
    path = run_eval_stage(_stage_config(lab, models), out,
                          console=Console(file=printed, width=200))
    rows = _read_jsonl(out / "responses.jsonl")
    return types.SimpleNamespace(
        lab=lab, models=models, out=out, path=path, printed=printed.getvalue(),
        evaluation=json.loads(path.read_text()),
        rows={name: [r for r in rows if r["set"] == name]
              for name in ("prompts", "harmful", "harmless")},
        pairs=_read_jsonl(out / "rm_pairs.jsonl"), samples=_read_jsonl(out / "samples.jsonl"))


def _interval(value: dict, expected) -> None:
    assert value == {"value": pytest.approx(expected.value), "low": pytest.approx(expected.low),
                     "high": pytest.approx(expected.high), "n": expected.n}


def test_the_document_has_the_contract_layout(world):
    doc = world.evaluation
    assert world.path == world.out / "evaluation.json"
    assert (doc["kind"], doc["judge"], doc["prompts"], doc["baseline"], doc["samples"]) == (
        "pipeline_eval", "gold", 66, "sft", "samples.jsonl")
    assert list(doc["policies"]) == ["sft", "same", "other", "refuser", "foreign"]
    baseline = doc["policies"]["sft"]
    assert "win_rate" not in baseline and "kl" not in baseline
    assert set(baseline["aspects"]) == {"helpfulness", "harmlessness", "honesty", "verbosity",
                                        "fluency", "total"}
    assert set(baseline["score"]) == {"value", "low", "high", "n"}
    assert baseline["score"]["n"] == 66 and baseline["refusal_rate"]["n"] == 24
    assert set(doc["policies"]["other"]["win_rate"]) == {"wins", "ties", "losses", "rate"}
    assert doc["data"]["harmful"]["refusals"] == doc["data"]["harmless"]["refusals"] == "lab"
    assert len(world.rows["prompts"]) == 66 and len(world.rows["harmful"]) == 24
    assert "sampling sft (baseline): 114 responses" in world.printed


def test_the_baselines_own_directory_has_kl_zero_and_the_recorded_win_rate(world):
    """Identical weights give identical log-probabilities, so every KL term is exactly 0.

    ``same`` samples with seed + 1, so its responses differ from the baseline's and the
    win rate is whatever compare_scores says on the recorded scores.
    """
    from alignkit.eval.policy_eval import compare_scores

    same = world.evaluation["policies"]["same"]
    assert same["kl"] == {"value": 0.0, "low": 0.0, "high": 0.0, "n": 66}
    assert all(r["responses"]["same"]["kl"] == 0.0 for r in world.rows["prompts"])
    assert any(r["responses"]["same"]["text"] != r["responses"]["sft"]["text"]
               for r in world.rows["prompts"])
    for name in ("same", "other", "refuser"):
        policy = np.array([r["responses"][name]["score"] for r in world.rows["prompts"]])
        baseline = np.array([r["responses"]["sft"]["score"] for r in world.rows["prompts"]])
        expected = compare_scores(policy, baseline, resamples=RESAMPLES, seed=0)
        win = world.evaluation["policies"][name]["win_rate"]
        assert (win["wins"], win["ties"], win["losses"]) == (
            expected.wins, expected.ties, expected.losses)
        _interval(win["rate"], expected.win_rate)
    assert world.evaluation["policies"]["other"]["kl"]["value"] > 0


def test_scores_and_aspects_are_the_gold_reward_of_the_recorded_responses(world):
    from alignkit.lab import gold_score

    for name, entry in world.evaluation["policies"].items():
        golds = [gold_score(r["prompt"], r["responses"][name]["text"])
                 for r in world.rows["prompts"]]
        totals = [g.total for g in golds]
        assert [r["responses"][name]["score"] for r in world.rows["prompts"]] == totals
        assert entry["score"]["value"] == pytest.approx(np.mean(totals), abs=1e-12)
        for aspect, figure in entry["aspects"].items():
            assert figure["value"] == pytest.approx(
                np.mean([getattr(g, aspect) for g in golds]), abs=1e-12), (name, aspect)
        tokens = [r["responses"][name]["tokens"] for r in world.rows["prompts"]]
        assert entry["length"]["value"] == pytest.approx(np.mean(tokens))


def test_the_refuser_refuses_everything_and_the_rates_count_refusals(world):
    from alignkit.lab import is_refusal

    texts = {r["responses"]["refuser"]["text"] for s in world.rows.values() for r in s}
    assert texts == {REFUSAL}
    refuser = world.evaluation["policies"]["refuser"]
    assert refuser["refusal_rate"]["value"] == refuser["over_refusal_rate"]["value"] == 1.0
    for name, entry in world.evaluation["policies"].items():
        for rows, figure in ((world.rows["harmful"], "refusal_rate"),
                             (world.rows["harmless"], "over_refusal_rate")):
            flags = [is_refusal(r["responses"][name]["text"]) for r in rows]
            assert [r["responses"][name]["refused"] for r in rows] == flags
            assert entry[figure]["value"] == pytest.approx(sum(flags) / len(flags))


def test_reward_model_accuracy_counts_the_recorded_rewards(world):
    rewards = np.array([[r["rewards"]["rm"]["chosen"], r["rewards"]["rm"]["rejected"]]
                        for r in world.pairs])
    assert len(world.pairs) == 80 and np.unique(rewards).size > 100
    right = (rewards[:, 0] > rewards[:, 1]).sum() + 0.5 * (rewards[:, 0] == rewards[:, 1]).sum()
    models = world.evaluation["reward_models"]
    assert models["rm"]["accuracy"]["value"] == pytest.approx(right / 80)
    assert models["rm"]["pairs"] == 80 and models["rm"]["path"] == world.models["rm"]
    # A zero head rewards everything 0: every pair is a tie, half right.
    assert models["flat"]["accuracy"] == {"value": 0.5, "low": 0.5, "high": 0.5, "n": 80}
    assert world.evaluation["policies"]["other"]["proxy"]["flat"]["value"] == 0.0
    proxy = [r["responses"]["other"]["proxy"]["rm"] for r in world.rows["prompts"]]
    assert world.evaluation["policies"]["other"]["proxy"]["rm"]["value"] == pytest.approx(
        np.mean(proxy))


def test_the_ceiling_is_the_panel_majority_against_the_true_order(world):
    """Count by hand on the lab file: the majority of the five annotators' labels."""
    agree = 0
    rows = _read_jsonl(world.lab.gold_pairs_eval)
    for row in rows:
        labels = list(row["labels"].values())
        agree += labels.count("chosen") > labels.count("rejected")
    ceiling = world.evaluation["reward_models"]["rm"]["ceiling"]
    assert ceiling["n"] == len(rows) == 80
    assert ceiling["value"] == pytest.approx(agree / 80)
    assert 0.5 < ceiling["value"] < 1.0


def test_a_policy_with_another_tokenizer_has_no_kl(world):
    foreign = world.evaluation["policies"]["foreign"]
    assert foreign["kl"] is None and "tokenizer differs" in foreign["kl_note"]
    assert foreign["win_rate"]["rate"]["n"] == 66


def test_samples_are_spread_over_categories(world):
    categories = [r["category"] for r in world.rows["prompts"]]
    chosen = spread_indices(categories, 12)
    assert [s["prompt"] for s in world.samples] == [world.rows["prompts"][i]["prompt"]
                                                    for i in chosen]
    assert len({s["category"] for s in world.samples}) == min(12, len(set(categories)))
    for sample, index in zip(world.samples, chosen, strict=True):
        recorded = world.rows["prompts"][index]["responses"]
        assert sample["responses"] == {name: {"text": r["text"], "score": r["score"]}
                                       for name, r in recorded.items()}


def test_spread_indices_by_hand():
    """Categories take turns in order of first appearance: a0, b2, c4, then a1."""
    assert spread_indices(["a", "a", "b", "a", "c", "b"], 4) == [0, 1, 2, 4]
    assert spread_indices(["a", "a", "b"], 10) == [0, 1, 2]
    assert spread_indices([None, None, None], 2) == [0, 1]
    assert spread_indices(["a"], 0) == []


def test_panel_agreement_by_hand():
    """Majority for chosen: 1; for rejected: 0; even split: 0.5; no preferring vote: left out."""
    votes = [{"a": 1, "b": 1, "c": -1}, {"a": -1, "b": -1, "c": 1}, {"a": 1, "b": -1},
             {}, {"a": 0}, {"a": 1, "b": 0}]
    assert panel_agreement(votes).tolist() == [1.0, 0.0, 0.5, 1.0]


# -- bad configuration, reported before any model loads ---------------------------------------

def test_bad_settings_name_the_field(world, tmp_path):
    with pytest.raises(ConfigError, match="judge.*unknown judge 'oracle'"):
        _stage_config(world.lab, world.models, judge="oracle")
    with pytest.raises(ConfigError, match="policies.*at least 1"):
        _stage_config(world.lab, world.models, policies={})
    with pytest.raises(ConfigError, match="refusal_detector.*unknown refusal detector"):
        _stage_config(world.lab, world.models, refusal_detector="regex")


@pytest.mark.parametrize(("changes", "message"), [
    ({"prompts": "missing.jsonl"}, "prompts: file 'missing.jsonl' does not exist"),
    ({"harmful": "nope.jsonl"}, "harmful: file 'nope.jsonl' does not exist"),
    ({"policies": {"dpo": "no/such/run"}}, "policies.dpo: .*no/such/run does not exist"),
    ({"policies": {"sft": "SFT"}}, "policies.sft has the baseline's name 'sft'"),
    ({"reward_models": {"rm": "SFT"}}, "reward_models.rm: .*not a reward model"),
    ({"judge": "fn:nowhere_module:score"}, "judge: .*cannot import module 'nowhere_module'"),
    ({"judge": "rm:no/such/rm"}, "judge: .*no/such/rm does not exist"),
])
def test_bad_inputs_fail_before_sampling(world, tmp_path, changes, message):
    changes = {k: ({n: world.models["sft"] if p == "SFT" else p for n, p in v.items()}
                   if isinstance(v, dict) else v) for k, v in changes.items()}
    cfg = _stage_config(world.lab, world.models, **changes)
    with pytest.raises(ConfigError, match=message):
        run_eval_stage(cfg, tmp_path / "eval", console=Console(file=io.StringIO()))
    assert not (tmp_path / "eval").exists()


def test_the_gold_judge_needs_lab_prompts(world, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Write a haiku about autumn.\nWhat is the capital of France?\n")
    cfg = _stage_config(world.lab, world.models, prompts=str(prompts))
    with pytest.raises(ConfigError, match="judge gold scores lab prompts only"):
        run_eval_stage(cfg, tmp_path / "eval", console=Console(file=io.StringIO()))
