"""The SFT loop: accumulation equals one big batch; the loss falls; LoRA leaves the base."""

import torch
import yaml

from alignkit.config import load_config
from alignkit.data.collate import SFTCollator
from alignkit.data.schema import SFTExample
from alignkit.data.tokenize import tokenize_sft
from alignkit.models.load import init_causal_lm_from_config, load_tokenizer
from alignkit.rundir import RunDir, read_metrics
from alignkit.train.sft import scored_tokens, sft_batch_loss, train_sft
from alignkit.train.sft_config import SFTConfig


def _rows(tokenizer, n=8):
    colours = ["red", "blue", "green"]
    examples = [SFTExample(prompt=f"repeat {colours[i % 3]}" + " big" * (i % 4),
                           completion=f"{colours[i % 3]} " * (1 + i % 3)) for i in range(n)]
    return [tokenize_sft(e, tokenizer, 64) for e in examples]


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_accumulated_micro_batches_give_the_big_batch_gradient(toy_model):
    """Rows have 1-3 response tokens plus EOS, so micro-batches hold different token counts;
    normalising each by the token count of the whole step makes the sum of the four micro-batch
    gradients equal the gradient of the single batch of eight (a per-micro-batch mean would not)."""
    tokenizer_dir, config = toy_model
    tokenizer = load_tokenizer(tokenizer_dir)
    model = init_causal_lm_from_config(config, vocab_size=len(tokenizer), seed=0)
    collate = SFTCollator(tokenizer.pad_token_id)
    rows = _rows(tokenizer)

    big = collate(rows)
    sft_batch_loss(model, big, scored_tokens(big)).backward()
    expected = _grads(model)
    model.zero_grad()

    micro = [collate(rows[i:i + 2]) for i in range(0, 8, 2)]
    assert len({scored_tokens(b) for b in micro}) > 1
    total = sum(scored_tokens(b) for b in micro)
    for batch in micro:
        sft_batch_loss(model, batch, total).backward()
    got = _grads(model)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=1e-5)


def _config(tmp_path, toy_model, toy_data, **overrides):
    tokenizer_dir, config = toy_model
    rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in toy_data.pairs(96)]
    data = toy_data.write_jsonl(tmp_path / "sft.jsonl", rows)
    raw = {"output_dir": str(tmp_path / "run"),
           "model": {"init_from_config": str(config), "tokenizer": str(tokenizer_dir)},
           "data": {"train": str(data), "max_length": 32, "eval_fraction": 0.25},
           "optim": {"lr": 1e-2, "schedule": "constant"},
           "train": {"batch_size": 8, "epochs": 4, "log_every": 1, "save_every": 1000}}
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(SFTConfig, path, [f"{k}={v}" for k, v in overrides.items()])


def test_sft_learns_the_toy_task(tmp_path, toy_model, toy_data):
    """The response copies the prompt's colour twice: a 2-layer model learns it in 36 steps.
    Held-out NLL per token must fall from about ln(vocab=28) ~ 3.3 to under half of that."""
    cfg = _config(tmp_path, toy_model, toy_data)
    from alignkit.config import dump_config

    run = RunDir.create(cfg.output_dir, dump_config(cfg))
    train_sft(cfg, run)
    rows = read_metrics(run.path)
    assert rows[0]["loss"] > 2.5
    assert rows[-1]["eval_loss"] < 1.6
    assert (run.final / "model.safetensors").is_file()


def test_sft_learns_the_toy_task_in_bf16_through_the_cpu_attention(tmp_path, toy_model,
                                                                   toy_data, monkeypatch):
    """Under bf16 autocast every training pass takes alignkit's causal attention (both layers
    of each of the 36 forward passes; evaluation runs without gradients and goes to SDPA),
    and the task is learnt as in fp32."""
    from alignkit.config import dump_config
    from alignkit.models.causal_attention import CausalSelfAttention

    calls = []
    original = CausalSelfAttention.apply
    monkeypatch.setattr(CausalSelfAttention, "apply",
                        lambda *args: calls.append(args[0].dtype) or original(*args))
    cfg = _config(tmp_path, toy_model, toy_data, **{"train.precision": "bf16"})
    run = RunDir.create(cfg.output_dir, dump_config(cfg))
    train_sft(cfg, run)
    rows = read_metrics(run.path)
    assert len(calls) == 2 * 36 and set(calls) == {torch.bfloat16}
    assert rows[0]["loss"] > 2.5
    assert rows[-1]["eval_loss"] < 1.6


def test_lora_trains_adapters_and_leaves_the_base(tmp_path, toy_model, toy_data):
    cfg = _config(tmp_path, toy_model, toy_data, **{"peft.enabled": "true", "peft.r": 4,
                                                   "train.epochs": 1})
    from alignkit.config import dump_config
    from alignkit.train.models_setup import build_policy, tokenizer_for

    before = build_policy(cfg.model, cfg.peft, tokenizer_for(cfg.model), seed=0)
    base_before = {n: p.detach().clone() for n, p in before.named_parameters()}
    run = RunDir.create(cfg.output_dir, dump_config(cfg))
    train_sft(cfg, run)

    from peft import PeftModel

    base = init_causal_lm_from_config(cfg.model.init_from_config,
                                      vocab_size=len(tokenizer_for(cfg.model)), seed=0)
    trained = PeftModel.from_pretrained(base, run.final)
    changed_lora, changed_base = 0, 0
    for name, param in trained.named_parameters():
        if "lora_B" in name:
            changed_lora += int(not torch.equal(param, base_before[name]))
        elif "lora_" not in name:
            changed_base += int(not torch.equal(param, base_before[name]))
    assert changed_lora > 0
    assert changed_base == 0
