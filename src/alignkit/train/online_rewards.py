"""Where the scores of sampled responses come from, and how they are shaped before training.

A *source* maps ``(prompts, responses)`` to one float per response:

* a reward model (a run directory or model directory): each prompt +
  response is tokenised with the reward model's own tokenizer and chat
  template, exactly as ``alignkit rm`` tokenised its pairs, and the score is
  read at the last real token (:func:`~alignkit.models.reward.sequence_rewards`);
* ``fn:module:function`` or ``fn:FILE.py:function``: a Python function
  ``f(prompt, response) -> float``
  called once per response, or with ``batched`` once per batch as
  ``f(prompts, responses) -> sequence of floats``. ``prompt`` is the data's
  prompt (a string or a list of messages), ``response`` the decoded text;
* ``gold``: the lab's programmatic gold reward (``alignkit.lab.gold_score``);
  ``gold:ASPECT`` one aspect of it, ``gold:-ASPECT`` its negation (e.g.
  ``gold:-harmlessness`` as a cost).

:class:`ScoreShaper` then applies the missing-end penalty, running
normalisation and clipping; its state goes into checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from alignkit.data.encode import encode_group
from alignkit.data.schema import Text
from alignkit.errors import ConfigError
from alignkit.models.load import load_tokenizer
from alignkit.models.paths import model_directory
from alignkit.models.reward import load_reward_model, sequence_rewards
from alignkit.rollout import dropout_off
from alignkit.user_functions import load_user_function

Scores = Callable[[Sequence[Text], Sequence[str]], torch.Tensor]
"""A source: prompts and responses in, (N,) float32 scores out."""


class FunctionSource:
    """Scores from a user's Python function named ``module:function``."""

    def __init__(self, spec: str, *, batched: bool, what: str = "reward") -> None:
        self.spec, self.batched, self.what = spec, batched, what
        self.function = load_user_function(spec, f"{what} source", ConfigError)

    def __call__(self, prompts: Sequence[Text], responses: Sequence[str]) -> torch.Tensor:
        if self.batched:
            values = self.function(list(prompts), list(responses))
            values = list(values) if not isinstance(values, torch.Tensor) else values.tolist()
            if len(values) != len(responses):
                raise ConfigError(f"{self.what} function {self.spec} returned {len(values)} "
                                  f"values for {len(responses)} responses")
        else:
            values = [self.function(p, r) for p, r in zip(prompts, responses, strict=True)]
        return _checked(values, f"{self.what} function {self.spec}", responses)


def _checked(values: Sequence[Any], who: str, responses: Sequence[str]) -> torch.Tensor:
    out = []
    for i, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ConfigError(f"{who} returned {value!r} for response {i} of the batch "
                              f"({responses[i][:60]!r}); scores must be finite numbers")
        out.append(number)
    return torch.tensor(out, dtype=torch.float32)


class GoldSource:
    """The lab's gold reward: ``gold_score(prompt, response).total``, or one of its aspects.

    Args:
        aspect: ``total`` or a numeric field of the lab's ``GoldScore``
            (``helpfulness``, ``harmlessness``, ...); a leading ``-`` negates it,
            e.g. ``-harmlessness`` as a cost.
    """

    ASPECTS = ("helpfulness", "harmlessness", "honesty", "verbosity", "fluency", "total")

    def __init__(self, aspect: str = "total") -> None:
        self.sign = -1.0 if aspect.startswith("-") else 1.0
        self.aspect = aspect.lstrip("-")
        if self.aspect not in self.ASPECTS:
            raise ConfigError(f"gold aspect '{aspect}' is unknown; choose one of "
                              f"{', '.join(self.ASPECTS)} (optionally negated with '-')")
        self.gold_score = _lab_gold_score()

    def details(self, prompts: Sequence[Text], responses: Sequence[str]
                ) -> dict[str, torch.Tensor]:
        """Every aspect of the gold score of each response: name -> (N,) float32."""
        scores = [self.gold_score(p, r) for p, r in zip(prompts, responses, strict=True)]
        return {name: _checked([getattr(s, name) for s in scores], "the lab's gold score",
                               responses) for name in self.ASPECTS}

    def __call__(self, prompts: Sequence[Text], responses: Sequence[str]) -> torch.Tensor:
        return self.sign * self.details(prompts, responses)[self.aspect]


def _lab_gold_score() -> Callable:
    try:
        from alignkit.lab import gold_score
    except ImportError:
        try:
            from alignkit.lab.gold import gold_score
        except ImportError:
            raise ConfigError("the gold reward needs the lab (alignkit.lab.gold_score), which "
                              "this installation lacks") from None
    return gold_score


class ModelSource:
    """Scores from a trained reward model, read at the last real token of prompt + response."""

    def __init__(self, path: str, *, device, dtype: str = "fp32", batch_size: int = 32,
                 trust_remote_code: bool = False) -> None:
        directory = model_directory(path, what="reward model")
        self.tokenizer = load_tokenizer(directory, trust_remote_code=trust_remote_code)
        self.model = load_reward_model(directory, dtype=dtype,
                                       trust_remote_code=trust_remote_code,
                                       pad_token_id=self.tokenizer.pad_token_id).to(device)
        self.model.requires_grad_(False)
        self.device, self.batch_size = device, batch_size

    def token_ids(self, prompt: Text, response: str) -> list[int]:
        """Prompt + response (+ end token) as the reward model saw pairs in training."""
        prompt_ids, ((response_ids, _),) = encode_group(prompt, [response], self.tokenizer)
        return prompt_ids + response_ids

    @torch.no_grad()
    def __call__(self, prompts: Sequence[Text], responses: Sequence[str]) -> torch.Tensor:
        rows = [self.token_ids(p, r) for p, r in zip(prompts, responses, strict=True)]
        scores = []
        with dropout_off(self.model):
            for start in range(0, len(rows), self.batch_size):
                ids, mask = _right_pad(rows[start:start + self.batch_size],
                                       self.tokenizer.pad_token_id, self.device)
                scores.append(sequence_rewards(self.model, ids, mask).cpu())
        return torch.cat(scores)


def _right_pad(rows: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return ids.to(device), mask.to(device)


def build_source(spec: str, *, batched: bool = False, device="cpu", batch_size: int = 32,
                 dtype: str = "fp32", what: str = "reward") -> Scores:
    """The source a config string names: ``gold[:aspect]``, ``fn:module:function`` or a path."""
    if spec == "gold" or spec.startswith("gold:"):
        return GoldSource(spec[5:] or "total")
    if spec.startswith("fn:"):
        return FunctionSource(spec[3:], batched=batched, what=what)
    return ModelSource(spec, device=device, dtype=dtype, batch_size=batch_size)


class ScoreShaper:
    """Missing-end penalty, then running standardisation, then clipping.

    Args:
        missing_eos_penalty: subtracted from the score of a response without an end token.
        normalize: divide ``score - running mean`` by the running standard deviation;
            the running moments include the current batch (Welford/Chan update).
        clip: clip to ``[-clip, clip]`` after normalisation.
        state: what :meth:`state` returned earlier (from a checkpoint).
    """

    def __init__(self, *, missing_eos_penalty: float | None = None, normalize: bool = False,
                 clip: float | None = None, state: dict | None = None) -> None:
        self.penalty, self.normalize, self.clip = missing_eos_penalty, normalize, clip
        state = state or {}
        self.count = int(state.get("count", 0))
        self.mean = float(state.get("mean", 0.0))
        self.m2 = float(state.get("m2", 0.0))

    def state(self) -> dict:
        """The running moments, JSON-able."""
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def __call__(self, scores: torch.Tensor, ended: torch.Tensor) -> torch.Tensor:
        """Shape (N,) scores; ``ended`` (N,) bool says which responses stopped by themselves."""
        shaped = scores.float()
        if self.penalty:
            shaped = torch.where(ended.to(shaped.device), shaped, shaped - self.penalty)
        if self.normalize:
            self._absorb(shaped)
            std = math.sqrt(self.m2 / max(self.count - 1, 1))
            shaped = (shaped - self.mean) / max(std, 1e-8)
        if self.clip is not None:
            shaped = shaped.clamp(-self.clip, self.clip)
        return shaped

    def _absorb(self, batch: torch.Tensor) -> None:
        n = batch.numel()
        batch_mean = float(batch.mean())
        batch_m2 = float(((batch - batch_mean) ** 2).sum())
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.m2 += batch_m2 + delta ** 2 * self.count * n / total
        self.count = total
