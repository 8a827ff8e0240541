"""Reference strategies: precomputed, adapter and copy agree; LoRA leaves base and reference
alone; a starting adapter is part of the reference; the precomputed cache survives a resume."""

import math
import shutil

import pytest
import torch
import yaml

from alignkit.config import dump_config, load_config
from alignkit.data.collate import collate_rows
from alignkit.models.lora import adapters_disabled, apply_lora
from alignkit.rundir import RunDir, read_events, read_metrics
from alignkit.train import reference as reference_module
from alignkit.train.dpo_config import DPOConfig
from alignkit.train.models_setup import build_policy, tokenizer_for
from alignkit.train.policy_forward import forward_logps
from alignkit.train.preference import train_dpo
from alignkit.train.reference import reference_key

LN2 = math.log(2)


def _config(tmp_path, toy_model, toy_data, name, *overrides):
    tokenizer_dir, config = toy_model
    data = toy_data.write_jsonl(tmp_path / "pairs.jsonl", toy_data.pairs(48, seed=3))
    raw = {"output_dir": str(tmp_path / name),
           "model": {"init_from_config": str(config), "tokenizer": str(tokenizer_dir)},
           "data": {"train": str(data), "max_length": 32},
           "loss": {"type": "dpo", "beta": 0.5},
           "optim": {"lr": 1e-2, "schedule": "constant"},
           "train": {"batch_size": 8, "max_steps": 2, "log_every": 1, "save_every": 100}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(DPOConfig, path, list(overrides))


def _train(cfg, *, resume=False):
    run = RunDir.create(cfg.output_dir, dump_config(cfg), resume=resume)
    return train_dpo(cfg, run), run


def _losses(run):
    return [row["loss"] for row in read_metrics(run.path) if "loss" in row]


LORA = ("peft.enabled=true", "peft.r=4")


def test_precomputed_adapter_and_copy_give_the_same_losses(tmp_path, toy_model, toy_data):
    """Step 1: the policy is its reference, so h = 0 and the loss is -log σ(0) = ln 2 in every
    mode. All modes take the same first update, so step 2 (policy moved, reference not) must
    agree too, and differ from ln 2. Under LoRA and in full fine-tuning."""
    losses = {}
    for mode in ("precomputed", "adapter", "copy"):
        cfg = _config(tmp_path, toy_model, toy_data, f"lora-{mode}", *LORA,
                      f"reference.mode={mode}")
        losses[f"lora-{mode}"] = _losses(_train(cfg)[1])
    for mode in ("precomputed", "copy"):
        cfg = _config(tmp_path, toy_model, toy_data, f"full-{mode}", f"reference.mode={mode}")
        losses[f"full-{mode}"] = _losses(_train(cfg)[1])
    for name, (first, second) in losses.items():
        assert first == pytest.approx(LN2, abs=1e-5), name
        assert abs(second - LN2) > 1e-3, name
    for group in ("lora", "full"):
        seconds = [second for name, (_, second) in losses.items() if name.startswith(group)]
        assert max(seconds) - min(seconds) < 1e-5 * abs(seconds[0]), (group, seconds)


def _starting_adapter(tmp_path, cfg):
    """A LoRA adapter whose B matrices are non-zero (seeded), saved as a peft directory."""
    tokenizer = tokenizer_for(cfg.model)
    base = build_policy(cfg.model, cfg.peft.model_copy(update={"enabled": False}), tokenizer,
                        seed=0)
    adapted = apply_lora(base, r=4, alpha=8, dropout=0.0, target_modules="all-linear")
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 2.0)
    adapted.save_pretrained(tmp_path / "starting-lora")
    return tmp_path / "starting-lora"


def test_a_starting_adapter_belongs_to_the_reference(tmp_path, toy_model, toy_data):
    """Continuing an adapter, the reference is base + that adapter: the first loss is ln 2
    exactly, in adapter mode (precomputed from the starting model) and copy mode. Switching
    the adapter off would give the bare base, whose log-probs differ: there ln 2 would fail."""
    probe = _config(tmp_path, toy_model, toy_data, "probe", *LORA)
    adapter = _starting_adapter(tmp_path, probe)
    for mode in ("adapter", "copy"):
        cfg = _config(tmp_path, toy_model, toy_data, f"start-{mode}", *LORA,
                      f"peft.adapter={adapter}", f"reference.mode={mode}")
        _, run = _train(cfg)
        assert _losses(run)[0] == pytest.approx(LN2, abs=1e-5), mode
    notes = [e["message"] for e in read_events(tmp_path / "start-adapter")]
    assert any("base + that adapter" in note for note in notes)

    tokenizer = tokenizer_for(probe.model)
    starting = build_policy(probe.model, probe.peft.model_copy(update={"adapter": str(adapter)}),
                            tokenizer, seed=0)
    batch = collate_rows([_row(tokenizer)], tokenizer.pad_token_id)
    with torch.no_grad():
        with_adapter = forward_logps(starting, batch).sums
        with adapters_disabled(starting):
            bare_base = forward_logps(starting, batch).sums
    assert float((with_adapter - bare_base).abs().max()) > 0.1


def _row(tokenizer):
    from alignkit.data.schema import PreferencePair
    from alignkit.data.tokenize import tokenize_pair

    return tokenize_pair(PreferencePair("repeat red cat", "red red", "blue blue"),
                         tokenizer, 32).chosen


def test_lora_changes_adapters_only_and_never_the_reference(tmp_path, toy_model, toy_data):
    """After 4 steps under LoRA with the adapter reference: every base weight equals the
    freshly built base; the policy with adapters off (the reference) scores a fixed row
    exactly as the untrained policy did; the trained adapters moved, and so did the policy."""
    cfg = _config(tmp_path, toy_model, toy_data, "lora", *LORA, "train.max_steps=4")
    tokenizer = tokenizer_for(cfg.model)
    torch.manual_seed(cfg.train.seed)
    before = build_policy(cfg.model, cfg.peft, tokenizer, seed=cfg.train.seed)
    start = {n: p.detach().clone() for n, p in before.named_parameters()}
    batch = collate_rows([_row(tokenizer)], tokenizer.pad_token_id)
    with torch.no_grad():
        untrained = forward_logps(before, batch).sums

    trained, _ = _train(cfg)
    trained.eval()
    with torch.no_grad():
        policy_now = forward_logps(trained, batch).sums
        with adapters_disabled(trained):
            reference_now = forward_logps(trained, batch).sums
    torch.testing.assert_close(reference_now, untrained, atol=1e-6, rtol=0)
    assert float((policy_now - untrained).abs().max()) > 1e-3
    params = dict(trained.named_parameters())
    base = [n for n in start if "lora_" not in n]
    assert base and all(torch.equal(params[n], start[n]) for n in base)
    assert all(not params[n].requires_grad for n in base)
    lora_b = [n for n in start if "lora_B" in n]
    assert lora_b and all(not torch.equal(params[n], start[n]) for n in lora_b)


def test_a_resumed_run_loads_the_cached_reference(tmp_path, toy_model, toy_data, monkeypatch):
    """Run 4 steps with checkpoints at 2 and 4; drop the step-4 checkpoint and final/ as a
    crash would; resume. The reference must be loaded, not recomputed (computing raises
    now), and steps 3-4 must repeat the uninterrupted run's losses exactly."""
    cfg = _config(tmp_path, toy_model, toy_data, "cached", "train.max_steps=4",
                  "train.save_every=2")
    _, run = _train(cfg)
    uninterrupted = _losses(run)
    cached = list((run.path / "reference").glob("*.safetensors"))
    assert len(cached) == 1
    shutil.rmtree(run.checkpoints / "step-00000004")
    shutil.rmtree(run.final)

    def recompute(*args, **kwargs):
        raise AssertionError("the reference was recomputed")

    monkeypatch.setattr(reference_module, "compute_reference_table", recompute)
    _, resumed = _train(cfg, resume=True)
    assert _losses(resumed) == pytest.approx(uninterrupted, rel=1e-6)
    notes = [e for e in read_events(run.path) if e["kind"] == "reference"]
    assert [e.get("cached") for e in notes if "cached" in e] == [False, True]
    assert list((run.path / "reference").glob("*.safetensors")) == cached


def test_the_cache_key_follows_model_data_and_settings(toy_model):
    """Same model, data and settings: same key. Another init seed, one token changed, or
    another max_length: another key."""
    from alignkit.models.load import init_causal_lm_from_config, load_tokenizer

    tokenizer_dir, config = toy_model
    tokenizer = load_tokenizer(tokenizer_dir)
    row = _row(tokenizer)
    sequences = {"train": [(row, row)], "eval": []}
    settings = {"max_length": 32}

    def model(seed):
        return init_causal_lm_from_config(config, vocab_size=len(tokenizer), seed=seed)

    key = reference_key(model(0), sequences, settings)
    assert reference_key(model(0), sequences, settings) == key
    assert reference_key(model(1), sequences, settings) != key
    changed = type(row)([*row.input_ids[:-1], row.input_ids[-1] + 1], row.loss_mask,
                        row.prompt_length)
    assert reference_key(model(0), {"train": [(row, changed)], "eval": []}, settings) != key
    assert reference_key(model(0), sequences, {"max_length": 64}) != key


def test_the_fingerprint_samples_whole_positions_inside_the_tensor():
    """Hand-computed spacing; at 40,960,000 positions (a 32,000 x 1,280 embedding) the last
    index is the last position, where a float32 linspace on CUDA rounded past the end."""
    from alignkit.train.reference import evenly_spaced

    assert evenly_spaced(10, 4).tolist() == [0, 3, 6, 9]
    assert evenly_spaced(3, 4096).tolist() == [0, 1, 2]
    assert evenly_spaced(1, 4096).tolist() == [0]
    big = evenly_spaced(40_960_000, 4096)
    assert big[-1].item() == 40_959_999 and big[1].item() == 40_959_999 // 4095
    assert bool((big[1:] > big[:-1]).all())
