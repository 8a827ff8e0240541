"""QLoRA on a CUDA GPU: a 4-bit base trains its adapters, and merge writes a full model.

Runs only with CUDA and bitsandbytes, and with ALIGNKIT_TEST_CUDA=1 (the suite hides GPUs
otherwise, see conftest.py).
"""

import importlib.util
import json

import pytest
import torch
import yaml

from alignkit.config import dump_config, load_config
from alignkit.models.load import init_causal_lm_from_config, load_causal_lm
from alignkit.rundir import RunDir, read_metrics
from alignkit.train.merge import merge_run
from alignkit.train.sft import train_sft
from alignkit.train.sft_config import SFTConfig

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None,
    reason="QLoRA needs a CUDA GPU and bitsandbytes")


def _base(tmp_path, toy_model):
    """The toy Llama saved in bf16 with its tokenizer: a base a 4-bit run can load."""
    from alignkit.models.load import load_tokenizer

    tokenizer_dir, config = toy_model
    tokenizer = load_tokenizer(tokenizer_dir)
    model = init_causal_lm_from_config(config, vocab_size=len(tokenizer), dtype="bf16")
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def test_qlora_trains_adapters_on_a_4bit_base_and_merges_into_a_full_model(tmp_path, toy_model,
                                                                           toy_data):
    base = _base(tmp_path, toy_model)
    rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in toy_data.pairs(96)]
    raw = {"output_dir": str(tmp_path / "run"),
           "model": {"path": str(base), "dtype": "bf16", "load_in_4bit": True},
           "peft": {"enabled": True, "r": 4, "alpha": 8},
           "data": {"train": str(toy_data.write_jsonl(tmp_path / "sft.jsonl", rows)),
                    "max_length": 32},
           "optim": {"lr": 1e-2, "schedule": "constant"},
           "train": {"batch_size": 8, "epochs": 2, "log_every": 1, "save_every": 1000,
                     "precision": "bf16"}}
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_config(SFTConfig, tmp_path / "sft.yaml", [])
    run = RunDir.create(cfg.output_dir, dump_config(cfg))
    train_sft(cfg, run)
    losses = [row["loss"] for row in read_metrics(run.path) if "loss" in row]
    assert len(losses) >= 20 and bool(torch.isfinite(torch.tensor(losses)).all())
    assert sum(losses[-4:]) < 0.9 * sum(losses[:4])

    merged_dir = merge_run(run.path)
    config = json.loads((merged_dir / "config.json").read_text())
    assert "quantization_config" not in config
    merged = load_causal_lm(merged_dir)
    plain = load_causal_lm(base)
    adapter = _adapter_weights(run.final)
    # W + (alpha / r) B A, for every adapted projection of the first layer
    scale = 8 / 4
    for name in ("q_proj", "v_proj", "down_proj"):
        key = next(k for k in adapter if "layers.0." in k and name in k and "lora_A" in k)
        a, b = adapter[key].float(), adapter[key.replace("lora_A", "lora_B")].float()
        path = key.split("base_model.model.")[1].replace(".lora_A.weight", ".weight")
        expected = plain.state_dict()[path].float() + scale * b @ a
        got = merged.state_dict()[path].float()
        assert not torch.equal(got, plain.state_dict()[path].float())
        torch.testing.assert_close(got, expected, atol=2e-2, rtol=2e-2)


def _adapter_weights(final):
    from safetensors.torch import load_file

    return load_file(final / "adapter_model.safetensors")
