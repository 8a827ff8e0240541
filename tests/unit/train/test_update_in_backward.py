"""optim.update_in_backward: the same updates as a normal step, with no gradient kept."""

import math
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file

from alignkit.config import dump_config, load_config
from alignkit.errors import ConfigError
from alignkit.rundir import RunDir, read_events, read_metrics
from alignkit.train.backward_update import UpdateInBackward
from alignkit.train.dpo_config import DPOConfig
from alignkit.train.group_config import GRPOConfig
from alignkit.train.optim import build_optimizer
from alignkit.train.preference import train_dpo
from alignkit.train.sft import train_sft
from alignkit.train.sft_config import SFTConfig


def _load(schema, tmp_path, raw, *overrides):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(schema, path, list(overrides))


def _raw(tmp_path, toy_model, data, name):
    tokenizer_dir, config = toy_model
    return {"output_dir": str(tmp_path / name),
            "model": {"init_from_config": str(config), "tokenizer": str(tokenizer_dir)},
            "data": {"train": str(data), "max_length": 32},
            "optim": {"lr": 3e-3, "weight_decay": 0.1, "schedule": "linear",
                      "warmup_steps": 2, "max_grad_norm": 0},
            "train": {"batch_size": 8, "max_steps": 5, "log_every": 1, "save_every": 1000}}


def _run_both(tmp_path, toy_model, data, schema, train):
    """Final weights and metrics rows of a normal run and one with update_in_backward."""
    results = []
    for name, in_backward in (("normal", "false"), ("in_backward", "true")):
        cfg = _load(schema, tmp_path, _raw(tmp_path, toy_model, data, name),
                    f"optim.update_in_backward={in_backward}")
        run = RunDir.create(cfg.output_dir, dump_config(cfg))
        train(cfg, run)
        results.append((load_file(run.final / "model.safetensors"), read_metrics(run.path)))
    return results


@pytest.mark.parametrize("task", ["sft", "dpo"])
def test_weights_equal_a_normal_run_bit_for_bit(tmp_path, toy_model, toy_data, task):
    """Five steps with warm-up, linear decay and weight decay on the matrices only: every
    tensor of the final model is identical, and so is every logged loss; the gradient norm,
    summed in another order, agrees to float precision."""
    pairs = toy_data.pairs(40)
    rows = pairs if task == "dpo" else [{"prompt": p["prompt"], "completion": p["chosen"]}
                                       for p in pairs]
    data = toy_data.write_jsonl(tmp_path / "data.jsonl", rows)
    schema, train = (DPOConfig, train_dpo) if task == "dpo" else (SFTConfig, train_sft)
    (normal, normal_rows), (released, released_rows) = _run_both(
        tmp_path, toy_model, data, schema, train)
    assert normal.keys() == released.keys()
    for name in normal:
        assert torch.equal(normal[name], released[name]), name
    steps = [r for r in normal_rows if "grad_norm" in r]
    steps_released = [r for r in released_rows if "grad_norm" in r]
    assert len(steps) == len(steps_released) == 5
    for a, b in zip(steps, steps_released, strict=True):
        assert a["loss"] == b["loss"]
        assert a["grad_norm"] > 0
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-5)


def test_a_resumed_run_ends_with_the_uninterrupted_weights(tmp_path, toy_model, toy_data):
    """Five DPO steps with checkpoints at 2 and 4 (and 5); drop everything after step 2 as
    a crash would, resume: the final weights equal the uninterrupted run's bit for bit
    (AdamW's moments and step counts come back from the checkpoint into the same hooks)."""
    data = toy_data.write_jsonl(tmp_path / "data.jsonl", toy_data.pairs(40))
    cfg = _load(DPOConfig, tmp_path, _raw(tmp_path, toy_model, data, "run"),
                "optim.update_in_backward=true", "train.save_every=2", "train.keep_last=3")
    run = RunDir.create(cfg.output_dir, dump_config(cfg))
    train_dpo(cfg, run)
    uninterrupted = load_file(run.final / "model.safetensors")
    for late in ("step-00000004", "step-00000005"):
        shutil.rmtree(run.checkpoints / late)
    shutil.rmtree(run.final)
    resumed = RunDir.create(cfg.output_dir, dump_config(cfg), resume=True)
    train_dpo(cfg, resumed)
    weights = load_file(resumed.final / "model.safetensors")
    resumes = [e["message"] for e in read_events(run.path) if e["kind"] == "resume"]
    assert resumes == ["resumed from step-00000002 at step 2"]
    assert weights.keys() == uninterrupted.keys()
    assert all(torch.equal(weights[n], uninterrupted[n]) for n in weights)


class _Shared(torch.nn.Module):
    """One weight used twice (like tied embeddings), one bias, one vector."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.weight = torch.nn.Parameter(torch.randn(4, 4))
        self.bias = torch.nn.Parameter(torch.randn(4))
        self.scale = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        return ((x @ self.weight + self.bias) @ self.weight.T * self.scale).square().sum()


def _optimizer(model):
    return build_optimizer(list(model.parameters()), lr=0.1, weight_decay=0.01,
                           betas=(0.9, 0.999), eps=1e-8)


def test_a_tensor_used_twice_is_updated_once_with_its_whole_gradient():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    normal = _Shared()
    optimizer = _optimizer(normal)
    normal(x).backward()
    expected_norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in normal.parameters()]))
    optimizer.step()

    released = _Shared()
    updates = UpdateInBackward(_optimizer(released), release_pages=True)
    released(x).backward()
    assert all(p.grad is None for p in released.parameters())
    assert updates.finish() == pytest.approx(float(expected_norm), rel=1e-6)
    for a, b in zip(normal.parameters(), released.parameters(), strict=True):
        assert torch.equal(a, b)
    assert updates.optimizer.state[released.weight]["step"] == 1
    updates.remove()  # as the engine does when training ends: backward keeps its gradients
    released(x).backward()
    assert all(p.grad is not None for p in released.parameters())
    assert updates.optimizer.state[released.weight]["step"] == 1


def test_a_non_finite_gradient_leaves_its_tensor_alone_and_shows_in_the_norm():
    model = _Shared()
    updates = UpdateInBackward(_optimizer(model), release_pages=False)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.scale.register_hook(lambda grad: torch.full_like(grad, math.nan))
    model(torch.ones(2, 4)).backward()
    assert math.isnan(updates.finish())
    assert torch.equal(model.scale, before["scale"])
    assert not torch.equal(model.weight, before["weight"])
    assert updates.finish() == 0.0  # a new step starts empty


def test_settings_it_cannot_honour_are_config_errors(tmp_path, toy_model, toy_data):
    data = toy_data.write_jsonl(tmp_path / "data.jsonl", toy_data.pairs(8))
    raw = _raw(tmp_path, toy_model, data, "run")
    with pytest.raises(ConfigError, match=r"^invalid configuration:\n  - optim.update_in_backward "
                                          r"needs train.grad_accum 1 \(it is 2\): "):
        _load(DPOConfig, tmp_path, raw, "optim.update_in_backward=true", "train.grad_accum=2")
    with pytest.raises(ConfigError, match=r"^invalid configuration:\n  - optim.update_in_backward "
                                          r"needs optim.max_grad_norm 0 \(it is 1.0\): "):
        _load(DPOConfig, tmp_path, raw, "optim.update_in_backward=true",
              "optim.max_grad_norm=1.0")


def test_online_rl_does_not_take_it(tmp_path):
    raw = {"model": {"path": str(tmp_path)}, "data": {"train": str(tmp_path / "p.jsonl")},
           "reward": {"source": "gold"}, "optim": {"update_in_backward": True}}
    with pytest.raises(ConfigError, match=r"^invalid configuration:\n  - optim.update_in_backward "
                                          r"= true \(\S+:6\): unknown key;[^\n]*$"):
        _load(GRPOConfig, tmp_path, raw)


def test_the_engine_skips_an_infinite_loss_without_touching_a_weight(tmp_path):
    """A non-finite loss is not backpropagated (here +inf plus a finite part, whose gradients
    would be finite and would be applied): no weight moves, the step is reported as skipped with
    a 'nan' event; the next finite loss updates every tensor and reports its gradient norm."""
    from alignkit.train.engine import Engine
    from alignkit.train.settings import OfflineOptimSettings, TrainSettings

    engine = Engine(TrainSettings(), OfflineOptimSettings(lr=0.1, max_grad_norm=0,
                                                          update_in_backward=True),
                    RunDir.create(tmp_path / "run", "a: 1\n"))
    model = engine.prepare(_Shared(), 8)
    start = [p.detach().clone() for p in model.parameters()]
    x = torch.ones(2, 4)
    engine.backward(model(x) + math.inf)
    assert engine.update(math.inf) is None
    assert all(torch.equal(p, s) for p, s in zip(model.parameters(), start, strict=True))
    assert [e["kind"] for e in read_events(tmp_path / "run")] == ["nan"]
    loss = model(x)
    engine.backward(loss)
    grad_norm = engine.update(float(loss.detach()))
    assert grad_norm is not None and grad_norm > 0
    assert all(not torch.equal(p, s) for p, s in zip(model.parameters(), start, strict=True))
    assert all(p.grad is None for p in model.parameters())
    engine.close()
