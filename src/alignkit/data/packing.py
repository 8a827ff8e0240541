"""Packing short SFT rows into fixed-length rows.

:func:`pack_examples` places tokenised examples into rows of ``seq_length``
tokens (best fit, longest first), and :class:`PackedCollator` pads the rows
to exactly ``seq_length``. Each packed batch carries, besides the usual
``input_ids``, ``attention_mask`` (N, S) (1 at real tokens), ``loss_mask`` and
``labels``:

- ``position_ids`` (N, S): 0, 1, 2... restarting at every example (and at the
  padding tail), so each example sees the positions it would see alone;
- ``document_ids`` (N, S): which example of the row each token belongs to,
  -1 on padding.

Attention must not cross example boundaries. A plain 2D attention mask does
not stop it (a Hugging Face Llama then lets the tokens of example 2 attend to
example 1), so the forward pass uses :func:`block_causal_mask`: a 4D additive
mask, causal within each example and closed between examples.
:func:`packed_model_inputs` builds the keyword arguments for that call, and
:func:`forward_inputs` does so for packed and unpacked batches alike. This
works with the ``eager`` and ``sdpa`` attention implementations.

The first token of each example has ``loss_mask`` False: predicting it would
mean predicting one example from the end of another.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from alignkit.data.collate import IGNORE_INDEX, Batch
from alignkit.data.tokenize import TokenizedExample
from alignkit.errors import ConfigError


@dataclass(frozen=True)
class PackedRow:
    """Several examples laid end to end (no padding yet).

    Attributes:
        input_ids: the examples' tokens, one after another.
        loss_mask: their loss masks, False at each example's first token.
        position_ids: positions restarting at 0 for each example.
        document_ids: index of the example (within this row) of each token.
    """

    input_ids: list[int]
    loss_mask: list[bool]
    position_ids: list[int]
    document_ids: list[int]


def pack_examples(examples: Sequence[TokenizedExample], seq_length: int) -> list[PackedRow]:
    """Pack ``examples`` into as few rows of at most ``seq_length`` tokens as best fit finds.

    Examples are placed longest first, each into the open row with the least
    room that still holds it; ties keep the input order, so packing is
    deterministic.

    Raises:
        ConfigError: an example longer than ``seq_length`` (truncate to a
            ``max_length`` no larger than the packed length).
    """
    for index, example in enumerate(examples):
        if len(example.input_ids) > seq_length:
            raise ConfigError(
                f"example {index} has {len(example.input_ids)} tokens, more than the packed row "
                f"length {seq_length}; set max_length <= the packing length"
            )
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids))
    members: list[list[int]] = []
    open_rows: list[tuple[int, int]] = []  # (free tokens, row index), sorted
    for index in order:
        size = len(examples[index].input_ids)
        slot = bisect.bisect_left(open_rows, (size, -1))
        if slot == len(open_rows):
            members.append([index])
            free, row = seq_length - size, len(members) - 1
        else:
            free, row = open_rows.pop(slot)
            members[row].append(index)
            free -= size
        if free > 0:
            bisect.insort(open_rows, (free, row))
    return [_lay_out([examples[i] for i in row]) for row in members]


def _lay_out(examples: Sequence[TokenizedExample]) -> PackedRow:
    input_ids: list[int] = []
    loss_mask: list[bool] = []
    position_ids: list[int] = []
    document_ids: list[int] = []
    for document, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids += example.input_ids
        loss_mask += [False, *example.loss_mask[1:]]
        position_ids += range(n)
        document_ids += [document] * n
    return PackedRow(input_ids, loss_mask, position_ids, document_ids)


def packing_efficiency(rows: Sequence[PackedRow], seq_length: int) -> float:
    """Share of the ``len(rows) * seq_length`` slots filled with real tokens."""
    if not rows:
        return 0.0
    return sum(len(row.input_ids) for row in rows) / (len(rows) * seq_length)


@dataclass(frozen=True)
class PackedCollator:
    """Pads packed rows to ``seq_length`` tokens (see the module docstring).

    Attributes:
        pad_token_id: id written at padding positions.
        seq_length: the padded length S; ``None`` pads to the batch's longest row.
    """

    pad_token_id: int
    seq_length: int | None = None

    def __call__(self, batch: Sequence[PackedRow]) -> Batch:
        longest = max(len(row.input_ids) for row in batch)
        if self.seq_length is not None and longest > self.seq_length:
            raise ConfigError(f"a packed row has {longest} tokens, more than the collator's "
                              f"seq_length {self.seq_length}; pack and collate with one length")
        length = self.seq_length or longest
        shape = (len(batch), length)
        input_ids = torch.full(shape, self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros(shape, dtype=torch.long)
        loss_mask = torch.zeros(shape, dtype=torch.bool)
        position_ids = torch.zeros(shape, dtype=torch.long)
        document_ids = torch.full(shape, -1, dtype=torch.long)
        for i, row in enumerate(batch):
            n = len(row.input_ids)
            input_ids[i, :n] = torch.tensor(row.input_ids, dtype=torch.long)
            attention_mask[i, :n] = 1
            loss_mask[i, :n] = torch.tensor(row.loss_mask, dtype=torch.bool)
            position_ids[i, :n] = torch.tensor(row.position_ids, dtype=torch.long)
            # The padding tail is one more block, with its own positions from 0.
            position_ids[i, n:] = torch.arange(length - n)
            document_ids[i, :n] = torch.tensor(row.document_ids, dtype=torch.long)
        return {
            "input_ids": input_ids, "attention_mask": attention_mask, "loss_mask": loss_mask,
            "labels": input_ids.masked_fill(~loss_mask, IGNORE_INDEX),
            "position_ids": position_ids, "document_ids": document_ids,
        }


def block_causal_mask(
    document_ids: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Additive attention mask: causal within each example, closed across examples.

    Args:
        document_ids: (N, S) example index of each token (padding shares one id).
        dtype: the model's floating dtype.

    Returns:
        (N, 1, S, S): 0 where query ``q`` may attend to key ``k`` (same
        example and ``k <= q``), the dtype's most negative value elsewhere.
    """
    length = document_ids.shape[1]
    same_document = document_ids[:, :, None] == document_ids[:, None, :]  # (N, S, S)
    causal = torch.ones(length, length, dtype=torch.bool, device=document_ids.device).tril()
    allowed = (same_document & causal)[:, None]  # (N, 1, S, S)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=document_ids.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)


def packed_model_inputs(
    batch: Batch, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """Keyword arguments for a causal LM's forward pass over a packed batch.

    Returns:
        ``input_ids`` (N, S), ``position_ids`` (N, S) and ``attention_mask``
        (N, 1, S, S) from :func:`block_causal_mask`.
    """
    if "document_ids" not in batch:
        raise ValueError("not a packed batch: it has no document_ids")
    return {
        "input_ids": batch["input_ids"],
        "position_ids": batch["position_ids"],
        "attention_mask": block_causal_mask(batch["document_ids"], dtype),
    }


def forward_inputs(batch: Batch, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Keyword arguments for a causal LM's forward pass over any collated batch.

    A packed batch (one with ``document_ids``) gets :func:`packed_model_inputs`;
    any other gets its ``input_ids`` and 2D ``attention_mask`` (and its
    ``position_ids`` when it has them). A right-padded batch without
    ``position_ids`` goes without its mask: in a causal model no real token
    attends to the padding after it, so the real positions' outputs are the
    masked pass's (up to float rounding), and with no mask transformers' SDPA
    path runs the causal kernel instead of one reading a materialised mask,
    3-16% faster per forward and backward on CPU (``docs/benchmarks.md``).
    The padding positions' outputs differ; nothing scores them.
    """
    if "document_ids" in batch:
        return packed_model_inputs(batch, dtype)
    keys = ("input_ids", "attention_mask", "position_ids")
    inputs = {key: batch[key] for key in keys if key in batch}
    if "position_ids" not in inputs and is_right_padded(inputs.get("attention_mask")):
        del inputs["attention_mask"]
    return inputs


def is_right_padded(attention_mask: torch.Tensor | None) -> bool:
    """Whether each row of a 2D mask is its real tokens (ones) followed only by padding."""
    if attention_mask is None or attention_mask.dim() != 2:
        return False
    return bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all())
