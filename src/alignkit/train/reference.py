"""The reference policy of the DPO family, without wasted model copies.

``reference.mode`` picks one of three strategies; each answers "what are the
reference's summed log-probs of these rows?" (:meth:`logps`):

* ``precomputed`` (full fine-tuning's default): before the first step, one
  no-grad pass of the starting model over the training and held-out data,
  saved as ``reference/<key>.safetensors`` in the run directory, with one row
  per example in dataset order and two columns (chosen and rejected; for KTO
  the row and its mismatched KL row). The key hashes the model (its config and
  a fingerprint of its weights), the tokenised data and the settings that
  change log-probs (dtype, precision, max_length), so a resumed run loads the
  file instead of recomputing it, and a changed model or data never reuses it.
* ``adapter`` (LoRA's default): the policy with its adapter switched off,
  which is the starting model when the adapter is fresh. When training
  continues an existing adapter (``peft.adapter``) the reference is the model
  as this run starts, base *plus* that adapter, which switching the adapter
  off would not give; the reference is then precomputed from the starting
  model exactly as in ``precomputed`` (one pass, no second adapter in memory).
* ``copy``: a frozen copy of the starting model, only when asked (twice the
  weights in memory).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from alignkit.atomic import atomic_write_bytes
from alignkit.data.collate import collate_rows
from alignkit.data.tokenized import TokenizedExample
from alignkit.models.lora import adapters_disabled
from alignkit.train.policy_forward import Batch, forward_logps

CACHE_VERSION = "1"
SAMPLED_VALUES = 4096
"""Values per tensor read into the weights fingerprint (besides its exact float64 sum)."""

Sequences = list[tuple[TokenizedExample, TokenizedExample]]
"""The two sequences of each example whose reference log-probs are needed, in dataset order."""


@dataclass(frozen=True)
class RowKeys:
    """Which example, and which of its two sequences, each row of a batch is.

    Attributes:
        split: ``train`` or ``eval``.
        examples: dataset index of each row.
        columns: 0 for a chosen row (KTO: the example's own row), 1 for a
            rejected row (KTO: its mismatched KL row).
    """

    split: str
    examples: list[int]
    columns: list[int]


def pair_keys(split: str, indices: Sequence[int]) -> RowKeys:
    """Keys of a pair batch: chosen rows ``0..B-1``, then rejected rows ``B..2B-1``."""
    return RowKeys(split, [*indices, *indices], [0] * len(indices) + [1] * len(indices))


def column_keys(split: str, indices: Sequence[int], column: int) -> RowKeys:
    """Keys of a batch holding one sequence (``column``) of each example."""
    return RowKeys(split, list(indices), [column] * len(indices))


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module):
    """No dropout in reference passes; the previous mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class ModelReference:
    """Reference log-probs from a model run without gradients (``copy`` or ``adapter``)."""

    def __init__(self, model: torch.nn.Module, mode: str) -> None:
        self.model, self.mode = model, mode

    def logps(self, batch: Batch, keys: RowKeys) -> torch.Tensor:
        """(N,) summed reference log-probs of the batch's rows (``keys`` is not needed)."""
        switch = adapters_disabled(self.model) if self.mode == "adapter" \
            else contextlib.nullcontext()
        with torch.no_grad(), _eval_mode(self.model), switch:
            return forward_logps(self.model, batch).sums


class PrecomputedReference:
    """Reference log-probs looked up in tables computed before training."""

    def __init__(self, tables: dict[str, torch.Tensor], mode: str = "precomputed") -> None:
        self.tables, self.mode = tables, mode

    def logps(self, batch: Batch, keys: RowKeys) -> torch.Tensor:
        """(N,) the stored log-probs of the rows ``keys`` names, on the batch's device."""
        table = self.tables[keys.split]  # (n_examples, 2)
        values = table[torch.tensor(keys.examples), torch.tensor(keys.columns)]
        return values.to(batch["input_ids"].device)


Reference = ModelReference | PrecomputedReference


@torch.no_grad()
def compute_reference_table(model: torch.nn.Module, sequences: Sequences, *, pad_token_id: int,
                            batch_size: int, device: torch.device | str = "cpu",
                            autocast: Callable[[], contextlib.AbstractContextManager]
                            = contextlib.nullcontext) -> torch.Tensor:
    """Summed log-probs of both sequences of every example, in batches, without gradients.

    Returns:
        (n_examples, 2) float32 on the CPU: column 0 for the first sequence of
        each example, column 1 for the second.
    """
    table = torch.zeros((len(sequences), 2), dtype=torch.float32)
    with _eval_mode(model), autocast():
        for start in range(0, len(sequences), batch_size):
            chunk = sequences[start:start + batch_size]
            rows = [first for first, _ in chunk] + [second for _, second in chunk]
            batch = {k: v.to(device) for k, v in collate_rows(rows, pad_token_id).items()}
            sums = forward_logps(model, batch).sums.float().cpu()  # (2b,)
            table[start:start + len(chunk)] = sums.view(2, len(chunk)).T
    return table


def weights_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of every tensor's name, shape, dtype, exact sum and evenly spaced values."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().reshape(-1)
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        if flat.numel() == 0 or not (flat.is_floating_point() or flat.dtype == torch.long):
            continue
        sample = flat[evenly_spaced(flat.numel(), SAMPLED_VALUES).to(flat.device)]
        sample = sample.double().cpu()
        digest.update(sample.numpy().tobytes())
        digest.update(repr(_exact_sum(flat)).encode())
    return digest.hexdigest()


def evenly_spaced(size: int, count: int) -> torch.Tensor:
    """``min(size, count)`` indices from 0 to ``size - 1``, evenly spaced, rounded down.

    Integer arithmetic: a float32 ``linspace`` over tens of millions of
    positions rounds its last index up past the end on CUDA.
    """
    count = min(size, count)
    return torch.arange(count, dtype=torch.long) * (size - 1) // max(count - 1, 1)


def _exact_sum(flat: torch.Tensor, chunk: int = 1 << 22) -> float:
    """Float64 sum of a 1-D tensor, a chunk at a time (no full float64 copy of a big tensor)."""
    return float(sum(flat[i:i + chunk].double().sum() for i in range(0, flat.numel(), chunk)))


def _model_config_text(model: torch.nn.Module) -> str:
    config = getattr(model, "config", None)
    raw = config.to_dict() if config is not None and hasattr(config, "to_dict") else {}
    raw = {k: v for k, v in raw.items() if k not in ("_name_or_path", "transformers_version")}
    return json.dumps(raw, sort_keys=True, default=str)


def reference_key(model: torch.nn.Module, sequences: dict[str, Sequences],
                  settings: dict[str, object]) -> str:
    """The cache key: a hash of the model, the tokenised sequences and ``settings``.

    Returns:
        24 hex digits.
    """
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    digest.update(_model_config_text(model).encode())
    digest.update(weights_fingerprint(model).encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for split in sorted(sequences):
        digest.update(f"|{split}:{len(sequences[split])}".encode())
        for pair in sequences[split]:
            for seq in pair:
                digest.update(array("q", seq.input_ids).tobytes())
                digest.update(bytes(seq.loss_mask))
                digest.update(b";")
    return digest.hexdigest()[:24]


def cache_path(run_path: Path, key: str) -> Path:
    """Where the precomputed reference of ``key`` lives in a run directory."""
    return Path(run_path) / "reference" / f"{key}.safetensors"


def save_tables(path: Path, tables: dict[str, torch.Tensor], key: str) -> None:
    """Write the tables atomically (safetensors, with the key in its metadata)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, safetensors_bytes(
        {split: t.contiguous() for split, t in tables.items()}, metadata={"key": key}))


def load_tables(path: Path) -> dict[str, torch.Tensor]:
    """The tables saved by :func:`save_tables`."""
    return load_file(str(path))


def announce(engine, message: str, **data) -> None:
    """An event, also printed on the console before the progress bar exists."""
    engine.event("reference", message, **data)
    if engine.is_main and engine.progress is None:
        print(f"[reference] {message}", file=sys.stderr, flush=True)


def build_reference(mode: str, policy: torch.nn.Module, cfg, engine,
                    sequences: dict[str, Sequences], pad_token_id: int) -> Reference | None:
    """The reference of a run, built from the policy *before* training changes it.

    Call it before ``engine.prepare`` (which may load a checkpoint's weights).

    Args:
        mode: the settled mode (:func:`~alignkit.train.dpo_config.reference_mode`).
        policy: the starting policy (a peft model under LoRA).
        cfg: the run's :class:`~alignkit.train.dpo_config.DPOConfig`.
        engine: the run's engine (device, process roles, events, run directory).
        sequences: split -> the two sequences of each example, for precomputing.
        pad_token_id: the id batches are padded with.
    """
    if mode == "none":
        return None
    if mode == "copy":
        frozen = copy.deepcopy(policy).requires_grad_(False).to(engine.device)
        announce(engine, "the reference is a frozen copy of the starting model (twice the weights "
                 "in memory)")
        return ModelReference(frozen, "copy")
    if mode == "adapter" and cfg.peft.adapter is None:
        return ModelReference(policy, "adapter")
    if mode == "adapter":
        announce(engine, f"peft.adapter continues {cfg.peft.adapter}: the reference is the "
                 "model as this run starts (base + that adapter), so its log-probs are "
                 "precomputed rather than read with the adapter switched off")
    return _precomputed(mode, policy, cfg, engine, sequences, pad_token_id)


def _precomputed(mode: str, policy: torch.nn.Module, cfg, engine,
                 sequences: dict[str, Sequences], pad_token_id: int) -> PrecomputedReference:
    """Load the cached tables of this model and data, or compute them on the main process."""
    policy.to(engine.device)
    settings = {"dtype": cfg.model.dtype, "precision": cfg.train.precision,
                "max_length": cfg.data.max_length, "max_prompt_length": cfg.data.max_prompt_length}
    key = reference_key(policy, sequences, settings)
    path = cache_path(engine.run.path, key)
    if path.is_file():
        announce(engine, f"loaded precomputed reference log-probs from {path}", cached=True,
                 key=key)
    elif engine.is_main:
        batch_size = cfg.reference.batch_size or cfg.train.batch_size
        counts = ", ".join(f"{len(rows)} {split}" for split, rows in sequences.items())
        announce(engine, f"computing reference log-probs ({counts} examples, batches of "
                 f"{batch_size}) ...", cached=False, key=key)
        tables = {split: compute_reference_table(
            policy, rows, pad_token_id=pad_token_id, batch_size=batch_size,
            device=engine.device, autocast=engine.accelerator.autocast)
            for split, rows in sequences.items()}
        save_tables(path, tables, key)
        announce(engine, f"reference log-probs saved to {path}")
    engine.accelerator.wait_for_everyone()
    return PrecomputedReference(load_tables(path), mode)
