"""Exact parameter counts and layer shapes, from a model built on the meta device.

A model is named by a local directory holding ``config.json``, a
``config.json`` file, or a preset of the catalogue. Its transformers class is
instantiated on the ``meta`` device (shapes only, no memory, no weights), so the
counts are exact for every architecture transformers knows, tied embeddings
included. Parameters are sorted into kinds by the module that owns them:
embeddings, attention, MLP, norms, the output head (``lm_head``, or a reward
model's ``score``) and anything else.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alignkit.errors import AlignkitError
from alignkit.plan.catalogue import Catalogue, did_you_mean

Head = Literal["causal_lm", "reward"]
LinearRole = Literal["attn_in", "attn_out", "mlp_in", "mlp_out"]

_ATTENTION = re.compile(r"attn|attention", re.IGNORECASE)
_MLP = re.compile(r"mlp|feed_forward|ffn", re.IGNORECASE)
_OUTPUT_NAMES = frozenset({"o_proj", "out_proj", "dense", "c_proj", "wo", "down_proj", "fc2",
                           "w2"})


@dataclass(frozen=True)
class ParameterCounts:
    """Parameters by kind; a tied output head is counted once, under embeddings."""

    embeddings: int
    attention: int
    mlp: int
    norms: int
    head: int
    other: int
    tied: bool

    @property
    def total(self) -> int:
        return self.embeddings + self.attention + self.mlp + self.norms + self.head + self.other


@dataclass(frozen=True)
class Linear:
    """One linear layer of a decoder layer: its name (``q_proj``), role and shape."""

    name: str
    role: LinearRole
    in_features: int
    out_features: int

    @property
    def params(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True)
class ModelShape:
    """What the memory formulas need to know about a model.

    Attributes:
        label: how the model was named (preset, directory or file).
        head: ``causal_lm`` (an ``lm_head`` over the vocabulary) or ``reward`` (``score``).
        model_type: the transformers ``model_type``.
        hidden, layers, heads, kv_heads, head_dim, intermediate, vocab: dimensions.
        gated_mlp: the MLP multiplies two projections (SwiGLU, GeGLU).
        linears: the linear layers of one decoder layer.
        params: parameter counts by kind.
        head_params: parameters of the output head (``lm_head`` even when tied).
        largest_param: elements of the largest parameter tensor.
        lean_ops: the lean RMSNorm and SwiGLU of :mod:`alignkit.models.lean_ops` apply.
        causal_attention: :mod:`alignkit.models.causal_attention` serves the model's
            causal training passes on a CPU.
    """

    label: str
    head: Head
    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    gated_mlp: bool
    linears: tuple[Linear, ...]
    params: ParameterCounts
    head_params: int
    largest_param: int
    lean_ops: bool = False
    causal_attention: bool = False

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def linear_params(self) -> int:
        """Parameters in the decoder layers' linear layers (all layers)."""
        return self.layers * sum(lin.params for lin in self.linears)


def read_model_config(source: str, catalogue: Catalogue) -> tuple[str, dict]:
    """``(label, config dict)`` of a directory, a ``config.json`` or a preset name.

    A run directory (one with ``final/`` and no ``config.json``) stands for its
    ``final/`` model.

    Raises:
        AlignkitError: nothing of that name, unreadable JSON, no ``model_type``.
    """
    path = Path(source)
    if path.is_dir():
        if not (path / "config.json").is_file() and (path / "final" / "config.json").is_file():
            path = path / "final"
        path = path / "config.json"
        if not path.is_file():
            raise AlignkitError(f"model directory '{source}' holds no config.json")
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AlignkitError(f"model config '{path}' is not valid JSON: {exc}") from None
        if not isinstance(raw, dict) or "model_type" not in raw:
            raise AlignkitError(f"model config '{path}' has no 'model_type'")
        return str(source), raw
    preset = catalogue.model(source)
    if preset is None:
        raise AlignkitError(
            f"model {source!r} is neither a directory, a config.json nor a preset"
            f"{did_you_mean(source, catalogue.models)}; presets: "
            f"{', '.join(name for name, _ in catalogue.models.values())}")
    name, entry = preset
    return name, entry.config_dict()


def build_meta_model(config: dict, head: Head = "causal_lm"):
    """The transformers model of ``config`` on the meta device (no memory is allocated)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    raw = {k: v for k, v in config.items() if k not in ("architectures", "auto_map")}
    model_type = raw.pop("model_type")
    try:
        cfg = AutoConfig.for_model(model_type, **raw)
        if head == "reward":
            cfg.num_labels = 1
        auto = AutoModelForSequenceClassification if head == "reward" else AutoModelForCausalLM
        with torch.device("meta"):
            return auto.from_config(cfg)
    except (ValueError, KeyError, TypeError) as exc:
        raise AlignkitError(f"cannot build model_type {model_type!r}: {exc}") from None


def _kind(module_name: str, module, output_head) -> str:
    import torch

    if module is output_head:
        return "head"
    if isinstance(module, torch.nn.Embedding):
        return "embeddings"
    if "norm" in type(module).__name__.lower():
        return "norms"
    if _ATTENTION.search(module_name):
        return "attention"
    return "mlp" if _MLP.search(module_name) else "other"


def count_parameters(model) -> ParameterCounts:
    """Parameters of ``model`` by kind, each shared tensor counted once."""
    output_head = model.get_output_embeddings()
    if output_head is None:
        output_head = getattr(model, "score", None)
    counts = dict.fromkeys(("embeddings", "attention", "mlp", "norms", "head", "other"), 0)
    seen: set[int] = set()
    # Embeddings first, so a tied output head is counted under embeddings.
    modules = sorted(model.named_modules(),
                     key=lambda item: _kind(*item, output_head) != "embeddings")
    for name, module in modules:
        for param in module.parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                counts[_kind(name, module, output_head)] += param.numel()
    tied = output_head is not None and any(id(p) in seen for p in output_head.parameters()) \
        and counts["head"] == 0
    return ParameterCounts(**counts, tied=tied)


def _decoder_layer(model):
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            return module[0]
    raise AlignkitError(f"{type(model).__name__}: no stack of decoder layers found")


def _layer_linears(layer) -> tuple[Linear, ...]:
    import torch

    found = []
    for name, module in layer.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(module, torch.nn.Linear) and type(module).__name__ != "Conv1D":
            continue
        short = name.rsplit(".", 1)[-1]
        in_features, out_features = (module.in_features, module.out_features) \
            if isinstance(module, torch.nn.Linear) else tuple(weight.shape)
        block = "attn" if _ATTENTION.search(name) else "mlp"
        role = f"{block}_{'out' if short in _OUTPUT_NAMES else 'in'}"
        found.append(Linear(short, role, in_features, out_features))
    return tuple(found)


def _is_gated(linears: tuple[Linear, ...], intermediate: int) -> bool:
    """Two input projections (gate and up), or one fused projection twice as wide."""
    inputs = [lin for lin in linears if lin.role == "mlp_in"]
    return len(inputs) >= 2 or any(lin.out_features == 2 * intermediate for lin in inputs)


@functools.lru_cache(maxsize=64)
def _describe(label: str, config_json: str, head: Head) -> ModelShape:
    from alignkit.models.causal_attention import supports as causal_supported
    from alignkit.models.lean_ops import supports as lean_supported

    config = json.loads(config_json)
    model = build_meta_model(config, head)
    cfg = model.config
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    linears = _layer_linears(_decoder_layer(model))
    mlp_out = [lin for lin in linears if lin.role == "mlp_out"]
    intermediate = mlp_out[0].in_features if mlp_out else 4 * cfg.hidden_size
    output_head = model.get_output_embeddings() if head == "causal_lm" else model.score
    return ModelShape(
        label=label, head=head, model_type=cfg.model_type, hidden=cfg.hidden_size,
        layers=cfg.num_hidden_layers, heads=heads,
        kv_heads=getattr(cfg, "num_key_value_heads", None) or heads, head_dim=head_dim,
        intermediate=intermediate, vocab=cfg.vocab_size,
        gated_mlp=_is_gated(linears, intermediate),
        linears=linears, params=count_parameters(model),
        head_params=sum(p.numel() for p in output_head.parameters()),
        largest_param=max(p.numel() for p in model.parameters()),
        lean_ops=lean_supported(model), causal_attention=causal_supported(model))


def describe_model(label: str, config: dict, head: Head = "causal_lm",
                   vocab_size: int | None = None) -> ModelShape:
    """The :class:`ModelShape` of ``config`` (``vocab_size`` overrides the config's)."""
    if vocab_size is not None:
        config = dict(config, vocab_size=vocab_size)
    return _describe(label, json.dumps(config, sort_keys=True, default=str), head)


def lora_parameters(shape: ModelShape, rank: int, targets: str | tuple[str, ...]) -> int:
    """Parameters of LoRA adapters of rank ``rank`` on the decoder layers' linear layers.

    ``all-linear`` adapts every linear layer of the decoder layers (as peft does:
    the output head is left out); otherwise the layers whose names are listed.
    Each adapted ``in -> out`` layer gains ``A`` (in x r) and ``B`` (r x out).
    """
    chosen = adapted_linears(shape, targets)
    return shape.layers * sum(rank * (lin.in_features + lin.out_features) for lin in chosen)


def adapted_linears(shape: ModelShape, targets: str | tuple[str, ...]) -> tuple[Linear, ...]:
    """The linear layers of one decoder layer that LoRA ``targets`` adapt."""
    if targets == "all-linear":
        return shape.linears
    names = set(targets)
    return tuple(lin for lin in shape.linears if lin.name in names)
