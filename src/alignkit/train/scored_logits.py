"""Logits only where a scored token is predicted: the shared prompt columns are skipped.

The losses of SFT and the DPO family score response tokens, and a batch's
first columns are prompt in every row: their logits, the output head's
product and the log-softmax over the vocabulary, forward and backward, are
wasted work. :func:`scored_logits` asks the model for the last ``K`` columns
only (transformers' ``logits_to_keep``), ``K`` counted from the first column
whose next token is scored in any row, and cuts the labels and the loss mask
to match. The hidden states of every column are still computed, as attention
needs them; only the head and the loss shrink. The head is a per-position
product, so the kept logits are the full pass's columns (bit for bit on this
project's CPU, in fp32 and under bf16 autocast).
"""

from __future__ import annotations

import torch

from alignkit.losses.logps import IGNORE_INDEX
from alignkit.rollout.generation import accepts_logits_to_keep

Batch = dict[str, torch.Tensor]


def kept_columns(labels: torch.Tensor, mask: torch.Tensor) -> int:
    """How many last columns hold every logit that predicts a scored token (at least 1).

    The logits at column ``t`` predict the token at ``t + 1``, which is scored
    where ``mask`` is true and the label is not :data:`IGNORE_INDEX`.
    """
    scored = mask[:, 1:].bool() & (labels[:, 1:] != IGNORE_INDEX)  # (N, T - 1)
    columns = scored.any(dim=0).nonzero()
    if columns.numel() == 0:
        return 1
    return labels.shape[1] - int(columns[0, 0])


def scored_logits(model, batch: Batch, inputs: dict) -> tuple[torch.Tensor, torch.Tensor,
                                                              torch.Tensor]:
    """Run ``model`` on ``inputs``; the logits of the scored tail, with its labels and mask.

    Returns:
        ``(logits (N, K, V), labels (N, K), loss_mask (N, K))``: the last ``K``
        columns (:func:`kept_columns`), or all ``T`` when the model cannot
        return fewer.
    """
    labels, mask = batch["labels"], batch["loss_mask"]
    keep = kept_columns(labels, mask)
    if keep >= labels.shape[1] or not accepts_logits_to_keep(model):
        return model(**inputs).logits, labels, mask
    logits = model(**inputs, logits_to_keep=keep).logits
    return logits, labels[:, -keep:], mask[:, -keep:]
