"""Batched sampling from a causal LM with a KV cache.

:func:`generate` runs the prompts through the model once (left-padded, so
every row's next token sits in the last column), copies each prompt's cache
``num_samples`` times instead of recomputing it, then decodes one token per
step for every row still running. A row stops at its first end token; rows
that have stopped are dropped from the cache, so the batch shrinks as rows
finish. Dropout is off while sampling (every module in eval mode) and each
module's own mode is restored afterwards. The cache reserves room for the
whole response up front (:mod:`alignkit.rollout.kv_cache`), so a step writes
its keys and values instead of copying the cache. For Llama-style models the
decoding steps skip the model's forward and run the same arithmetic from its
weights (:mod:`alignkit.rollout.llama_decode`); other models decode through
their own forward.

The result, a :class:`Rollout`, keeps the prompt left-padded and the response
right-padded, so ``cat(prompt, response)`` is a valid batch for a training
forward pass whose last ``R + 1`` logit positions score the response.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import torch

from alignkit.models.cache_api import returned_cache, with_cache
from alignkit.models.lora import forward_takes
from alignkit.models.reward import position_ids_from_mask
from alignkit.rollout.kv_cache import reserve
from alignkit.rollout.llama_decode import LlamaDecoder, lean_decoder
from alignkit.rollout.sampling import sample_next_token


@dataclass
class Rollout:
    """Sampled responses with everything a trainer needs about them.

    Row ``i * num_samples + j`` is sample ``j`` of prompt ``i``.

    Attributes:
        prompt_ids: (N, P) prompt ids, left-padded with the pad id.
        prompt_mask: (N, P) long, 1 at real prompt tokens.
        response_ids: (N, R) generated ids, right-padded with the pad id;
            ``R`` is the longest response (at most ``max_new_tokens``).
        response_mask: (N, R) bool, true at generated tokens (the end token
            included).
        ended: (N,) bool, whether the row stopped at an end token rather than
            at ``max_new_tokens``.
        logps: (N, R) float32 log-probs of the generated tokens under the
            sampling policy (``softmax(logits / T)``, see
            :mod:`alignkit.rollout.sampling`); 0 at padding.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor
    ended: torch.Tensor
    logps: torch.Tensor

    @property
    def response_lengths(self) -> torch.Tensor:
        """(N,) long: generated tokens per row."""
        return self.response_mask.sum(dim=1)

    def sequences(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt and response side by side: ``(input_ids, attention_mask)``, both (N, P + R)."""
        input_ids = torch.cat([self.prompt_ids, self.response_ids], dim=1)
        attention_mask = torch.cat([self.prompt_mask, self.response_mask.long()], dim=1)
        return input_ids, attention_mask

    def select(self, rows: torch.Tensor | Sequence[int]) -> Rollout:
        """The rollout of the given rows only (e.g. a minibatch)."""
        index = torch.as_tensor(rows, dtype=torch.long, device=self.ended.device)
        return Rollout(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def response_texts(self, tokenizer) -> list[str]:
        """Each response decoded without special tokens (the end token is dropped)."""
        return [tokenizer.decode(ids[mask].tolist(), skip_special_tokens=True)
                for ids, mask in zip(self.response_ids, self.response_mask, strict=True)]


def left_pad(prompts: Sequence[Sequence[int]], pad_token_id: int,
             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Stack prompts of different lengths, padded on the left.

    Returns:
        ``(ids, mask)``: (B, P) long each, ``P`` the longest prompt; mask is 1 at real tokens.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("left_pad needs at least one prompt and no empty prompt")
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.as_tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


@contextlib.contextmanager
def dropout_off(model: torch.nn.Module) -> Iterator[None]:
    """Put every module in eval mode, then give each its own mode back."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def accepts_logits_to_keep(model) -> bool:
    """Whether the model's forward can compute logits for the last positions only."""
    return forward_takes(model, "logits_to_keep")


def _forward_options(model) -> dict:
    """``logits_to_keep=1`` where the model supports it (only the last position is needed)."""
    return {"logits_to_keep": 1} if accepts_logits_to_keep(model) else {}


@torch.no_grad()
def generate(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_token_id: int | Sequence[int],
    pad_token_id: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
    lean: bool = True,
) -> Rollout:
    """Sample ``num_samples`` responses to each prompt.

    Args:
        model: a causal LM (transformers, optionally wrapped by peft).
        prompts: token ids of each prompt (non-empty), e.g. from
            :func:`alignkit.data.tokenize.tokenize_prompt`.
        max_new_tokens: most tokens generated per response (>= 1).
        eos_token_id: the end token, or several; a row stops after emitting one.
        pad_token_id: fills prompts on the left and responses on the right.
        temperature: ``T >= 0``; 0 is greedy decoding.
        top_p: nucleus size in (0, 1].
        num_samples: responses per prompt (rows ``i*k .. i*k + k - 1``).
        generator: the random stream (on the model's device); ``None`` uses
            torch's global one. Pass a seeded generator for reproducible rollouts.
        lean: decode Llama-style models with :class:`~alignkit.rollout.llama_decode.
            LlamaDecoder` (the same results, faster); False always uses the model's forward.

    Returns:
        A :class:`Rollout` of ``len(prompts) * num_samples`` rows, on the model's device.
    """
    if max_new_tokens < 1 or num_samples < 1:
        raise ValueError(f"generate needs max_new_tokens >= 1 and num_samples >= 1, got "
                         f"{max_new_tokens} and {num_samples}")
    device = next(model.parameters()).device
    eos = torch.as_tensor([eos_token_id] if isinstance(eos_token_id, int) else
                          list(eos_token_id), dtype=torch.long, device=device)
    prompt_ids, prompt_mask = left_pad(prompts, pad_token_id, device)
    with dropout_off(model):
        prefill = model(input_ids=prompt_ids, attention_mask=prompt_mask,
                        position_ids=position_ids_from_mask(prompt_mask), use_cache=True,
                        **_forward_options(model))
        cache, next_logits = returned_cache(prefill), prefill.logits[:, -1]
        if num_samples > 1:
            cache.batch_repeat_interleave(num_samples)
            next_logits = next_logits.repeat_interleave(num_samples, dim=0)
            prompt_ids = prompt_ids.repeat_interleave(num_samples, dim=0)
            prompt_mask = prompt_mask.repeat_interleave(num_samples, dim=0)
        stepper = ((lean and lean_decoder(model, cache, prompt_mask, max_new_tokens))
                   or _ModelStep(model, cache, prompt_mask, max_new_tokens))
        del prefill, cache  # the lean step copies the prompt's cache: free the original
        tokens, logps, lengths, ended = _decode(
            stepper, next_logits, prompt_mask, eos, max_new_tokens=max_new_tokens,
            pad_token_id=pad_token_id, temperature=temperature, top_p=top_p,
            generator=generator)
    width = int(lengths.max())
    response_mask = torch.arange(width, device=device)[None, :] < lengths[:, None]
    return Rollout(prompt_ids, prompt_mask, tokens[:, :width], response_mask, ended,
                   logps[:, :width])


class _ModelStep:
    """Decoding through the model's own forward and a reserved transformers cache."""

    def __init__(self, model, cache, prompt_mask: torch.Tensor, max_new_tokens: int) -> None:
        reserve(cache, max_new_tokens)
        self.model, self.cache, self.attention = model, cache, prompt_mask
        self.options = {**_forward_options(model), **with_cache(model, cache)}

    def keep(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)
        self.attention = self.attention[rows]

    def step(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        ones = self.attention.new_ones((self.attention.shape[0], 1))
        self.attention = torch.cat([self.attention, ones], dim=1)
        out = self.model(input_ids=token[:, None], attention_mask=self.attention,
                         position_ids=position[:, None], use_cache=True, **self.options)
        return out.logits[:, -1]


def _decode(stepper: LlamaDecoder | _ModelStep, next_logits: torch.Tensor,
            prompt_mask: torch.Tensor, eos: torch.Tensor, *, max_new_tokens: int,
            pad_token_id: int, temperature: float, top_p: float,
            generator: torch.Generator | None):
    """The token-by-token loop; returns (N, max_new_tokens) ids and log-probs, lengths, ended."""
    rows, device = prompt_mask.shape[0], prompt_mask.device
    tokens = torch.full((rows, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
    logps = torch.zeros((rows, max_new_tokens), dtype=torch.float32, device=device)
    lengths = torch.zeros(rows, dtype=torch.long, device=device)
    ended = torch.zeros(rows, dtype=torch.bool, device=device)
    active = torch.arange(rows, device=device)       # output row of each row in the cache
    position = prompt_mask.sum(dim=1) - 1             # (n,) position id of the last real token
    for step in range(max_new_tokens):
        token, token_logp = sample_next_token(next_logits, temperature=temperature,
                                              top_p=top_p, generator=generator)
        tokens[active, step] = token
        logps[active, step] = token_logp
        lengths[active] = step + 1
        stopped = torch.isin(token, eos)
        ended[active[stopped]] = True
        if step == max_new_tokens - 1 or bool(stopped.all()):
            break
        if bool(stopped.any()):
            running = (~stopped).nonzero().squeeze(1)
            stepper.keep(running)
            active, token, position = active[running], token[running], position[running]
        position = position + 1
        next_logits = stepper.step(token, position)
    return tokens, logps, lengths, ended
