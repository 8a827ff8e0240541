"""One pass per distinct prompt when several rollout rows share it (RLOO and GRPO groups).

A group method samples ``k`` responses to each prompt, and each row holds
``cat(prompt, response)``: a plain forward pass computes every prompt ``k``
times, in the training pass (with its backward) and in the no-grad passes.
Here the distinct prompts (all but their last token) go through the model
once, keeping their keys and values; the cache is indexed out to every row
(``index_select``, so in backward the rows' gradients add up into the shared
prompt), and the last prompt token and the response run on top of it. The
logits are those of the plain pass up to float rounding (the attention sums
over the same keys in other kernels).
"""

from __future__ import annotations

import torch

from alignkit.models.cache_api import cache_keyword, returned_cache, with_cache
from alignkit.models.lora import base_of, forward_takes
from alignkit.models.reward import position_ids_from_mask
from alignkit.rollout.kv_cache import window_cuts


def shared_prompt_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         response_width: int) -> torch.Tensor | None:
    """Logits of the last ``R + 1`` positions through one pass per distinct prompt.

    Args:
        model: a causal LM (optionally peft-wrapped) whose forward takes
            ``logits_to_keep``, a KV cache and ``position_ids``.
        input_ids, attention_mask: (N, P + R), prompts left-padded.
        response_width: ``R``.

    Returns:
        (N, R + 1, V) as :func:`~alignkit.train.online_forward.response_logits`
        computes them before the temperature, or ``None`` when no prompt is
        repeated or the model is one this path does not serve.
    """
    # The cached part stops before the last prompt token, so the second pass runs the
    # R + 1 positions whose logits are wanted, through one output-head product of the
    # same shape as the plain pass's.
    width = input_ids.shape[1] - response_width - 1
    if width < 1 or not _servable(model, input_ids.shape[1]):
        return None
    prompts = torch.cat([input_ids[:, :width], attention_mask[:, :width].to(input_ids)], dim=1)
    distinct, row_of = torch.unique(prompts, dim=0, return_inverse=True)
    if distinct.shape[0] == input_ids.shape[0]:
        return None
    prompt_ids, prompt_mask = distinct[:, :width], distinct[:, width:].to(attention_mask)
    cache = returned_cache(model(input_ids=prompt_ids, attention_mask=prompt_mask,
                                 position_ids=position_ids_from_mask(prompt_mask),
                                 use_cache=True, logits_to_keep=1))
    cache.reorder_cache(row_of)
    return model(input_ids=input_ids[:, width:], attention_mask=attention_mask,
                 position_ids=position_ids_from_mask(attention_mask)[:, width:],
                 use_cache=True, **with_cache(model, cache)).logits


def _servable(model, length: int) -> bool:
    """Whether the cached path computes what one plain pass over ``length`` tokens would.

    Not with several processes (DDP would see two forward calls before one
    backward), not with gradient checkpointing (transformers drops the cache
    there), not with a sliding window shorter than the rows (the cache would
    be cut), and only for models whose forward takes ``logits_to_keep`` and a
    cache. The answer does not depend on whether gradients are on, so that
    the no-grad passes and the training pass of a run compute alike.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1:
        return False
    base = base_of(model)
    checkpointing = "is_activation_checkpointing" \
        if hasattr(type(base), "is_activation_checkpointing") else "is_gradient_checkpointing"
    if getattr(base, checkpointing, False):
        return False
    if window_cuts(getattr(base, "config", None), length):
        return False
    return forward_takes(base, "logits_to_keep") and cache_keyword(base) is not None
