"""Judges: score a response to a prompt, higher is better.

A judge is named by a spec on the command line:

- ``rm:PATH``: a reward model (a model directory or a finished ``alignkit rm``
  run); the score is its reward for prompt + response, tokenised as in training.
- ``gold``: the lab's programmatic gold reward (``alignkit.lab``), its ``total``.
- ``fn:MODULE:FUNCTION`` or ``fn:FILE.py:FUNCTION``: a Python function
  ``f(prompt, response) -> float``; ``prompt`` is the prompt as the data holds
  it (text, or a list of messages), ``response`` the generated text.

Every score must be a finite number; anything else is an error naming the
judge and the prompt.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from alignkit.data.schema import SFTExample, Text
from alignkit.errors import AlignkitError

ScoreFunction = Callable[[Text, str], float]


class Judge(Protocol):
    """Anything that scores responses."""

    name: str

    def score(self, prompts: Sequence[Text], responses: Sequence[str]) -> np.ndarray:
        """``(n,)`` float64 scores of ``responses[i]`` to ``prompts[i]``."""
        ...


class FunctionJudge:
    """A Python function ``f(prompt, response) -> float`` as a judge."""

    def __init__(self, function: ScoreFunction, name: str) -> None:
        self.function = function
        self.name = name

    def score(self, prompts: Sequence[Text], responses: Sequence[str]) -> np.ndarray:
        scores = []
        for index, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
            try:
                value = self.function(prompt, response)
            except AlignkitError as exc:
                raise AlignkitError(f"judge {self.name}, prompt {index + 1}: {exc}") from None
            except Exception as exc:
                raise AlignkitError(f"judge {self.name} failed on prompt {index + 1}: "
                                    f"{type(exc).__name__}: {exc}") from exc
            scores.append(_finite(value, self.name, index))
        return np.array(scores, dtype=np.float64)


def _finite(value: Any, name: str, index: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise AlignkitError(f"judge {name} returned {value!r} for prompt {index + 1}; "
                            "expected a number")
    if not math.isfinite(float(value)):
        raise AlignkitError(f"judge {name} returned {value} for prompt {index + 1}; expected "
                            "a finite number")
    return float(value)


class RewardModelJudge:
    """A reward model's reward for prompt + response."""

    def __init__(self, model, tokenizer, *, name: str, batch_size: int = 16,
                 max_length: int | None = 1024) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.batch_size, self.max_length = batch_size, max_length

    def score(self, prompts: Sequence[Text], responses: Sequence[str]) -> np.ndarray:
        import torch

        from alignkit.data.collate import collate_rows, pad_token_id_of
        from alignkit.data.tokenize import tokenize_sft
        from alignkit.models.reward import sequence_rewards

        rows = [tokenize_sft(SFTExample(prompt=p, completion=r), self.tokenizer,
                             self.max_length) for p, r in zip(prompts, responses, strict=True)]
        device = next(self.model.parameters()).device
        pad = pad_token_id_of(self.tokenizer)
        scores = []
        with torch.no_grad():
            for start in range(0, len(rows), self.batch_size):
                batch = collate_rows(rows[start:start + self.batch_size], pad)
                scores += sequence_rewards(self.model, batch["input_ids"].to(device),
                                           batch["attention_mask"].to(device)).tolist()
        return np.array(scores, dtype=np.float64)


def gold_function() -> ScoreFunction:
    """The lab's gold reward as ``f(prompt, response) -> total``."""
    try:
        from alignkit.lab.gold import gold_score
    except ImportError as exc:
        raise AlignkitError("the 'gold' judge needs the lab (alignkit.lab), which this "
                            f"installation cannot import: {exc}") from None

    def total(prompt: Text, response: str) -> float:
        return gold_score(prompt, response).total

    return total


def load_function(target: str) -> ScoreFunction:
    """``MODULE:FUNCTION`` or ``FILE.py:FUNCTION`` as a callable."""
    from alignkit.user_functions import load_user_function

    return load_user_function(target, "judge")


def make_judge(spec: str, *, device: str = "cpu", dtype: str = "fp32", batch_size: int = 16,
               max_length: int | None = 1024) -> Judge:
    """The judge named by ``spec`` (see the module docstring)."""
    if spec == "gold":
        return FunctionJudge(gold_function(), "gold")
    if spec.startswith("fn:"):
        return FunctionJudge(load_function(spec.removeprefix("fn:")), spec)
    if spec.startswith("rm:"):
        from alignkit.eval.loading import load_scorer

        loaded = load_scorer(spec.removeprefix("rm:"), dtype=dtype, device=device)
        return RewardModelJudge(loaded.model, loaded.tokenizer, name=f"rm:{loaded.path}",
                                batch_size=batch_size, max_length=max_length)
    raise AlignkitError(f"unknown judge '{spec}'; expected rm:PATH, gold, fn:MODULE:FUNCTION "
                        "or fn:FILE.py:FUNCTION")
