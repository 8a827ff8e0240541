"""What a prompt family is: templates to ask with, answers to give, and a judge.

A family owns one kind of request (arithmetic, reviews, harmful requests...):

- its **templates**, some used for training and some held out for evaluation;
  a template is one or more user turns with ``{slot}`` fields;
- how to **sample** slot values and **parse** them back out of a prompt;
- a **good** answer and a **wrong** one, in the lab language;
- a **judge** that reads a response and says how far it did the task
  (helpfulness) and how many things it got wrong (false claims).

Slot values are kept as the text that appears in the prompt (``"7"``, not
``7``), so rendering then parsing a task gives the same slots back.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np

from alignkit.lab.language import normalize, words_of
from alignkit.lab.reading import Reading
from alignkit.lab.sampling import pick

Conversation = list[dict[str, str]]
_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Template:
    """User turns with ``{slot}`` fields; ``fixed`` slots are set by the template itself.

    Attributes:
        turns: the user turns, in order (two for a dialogue).
        heldout: kept out of every training file, for evaluation only.
        fixed: slots the wording decides, e.g. ``{"op": "plus"}``.
    """

    turns: tuple[str, ...]
    heldout: bool = False
    fixed: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One request of a family: the prompt and what it asks for.

    Attributes:
        family: the family's name, also the examples' ``category``.
        template: index of the template in the family's list.
        heldout: the template is a held-out one.
        slots: slot values as they appear in the prompt, plus the template's fixed ones.
        prompt: the conversation, ending with the user's request.
    """

    family: str
    template: int
    heldout: bool
    slots: Mapping[str, str]
    prompt: Conversation


@dataclass(frozen=True)
class Judgement:
    """A family's verdict on a response.

    Attributes:
        helpfulness: in [0, 1], how much of the task the response did.
        false_claims: claims the task shows to be false (a wrong sum, a wrong name...).
    """

    helpfulness: float
    false_claims: int = 0


class Family(ABC):
    """Base of every family; subclasses set the class attributes and the four methods."""

    name: str = ""
    budget: int = 10
    """Words a complete answer needs; longer answers are penalised as verbose."""
    harmful: bool = False
    """Requests of this family should be refused."""
    templates: tuple[Template, ...] = ()
    slot_patterns: ClassVar[Mapping[str, str]] = {}
    """Regular expression each slot's value matches."""

    @abstractmethod
    def sample_slots(self, rng: np.random.Generator, template: Template) -> dict[str, str]:
        """Values for the template's slots."""

    @abstractmethod
    def good(self, rng: np.random.Generator, task: Task) -> str:
        """An ideal response."""

    @abstractmethod
    def wrong(self, rng: np.random.Generator, task: Task) -> str:
        """A fluent response that gets the task wrong."""

    @abstractmethod
    def judge(self, task: Task, reading: Reading) -> Judgement:
        """How well a read response does the task."""

    def assistant_turns(self, slots: Mapping[str, str]) -> list[str]:
        """The assistant's replies between user turns (dialogues only)."""
        return []

    def phrases(self) -> Sequence[str]:
        """Every fixed phrase the family writes, for its vocabulary."""
        return []

    # -- shared machinery ------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, heldout: bool) -> Task:
        """A random task from the training (or held-out) templates."""
        indices = [i for i, t in enumerate(self.templates) if t.heldout == heldout]
        index = pick(rng, indices)
        template = self.templates[index]
        slots = {**self.sample_slots(rng, template), **template.fixed}
        return Task(self.name, index, heldout, slots, self.render(template, slots))

    def render(self, template: Template, slots: Mapping[str, str]) -> Conversation:
        """The prompt conversation of a template with its slots filled."""
        replies = self.assistant_turns(slots)
        messages: Conversation = []
        for i, turn in enumerate(template.turns):
            messages.append({"role": "user", "content": turn.format(**slots)})
            if i < len(replies):
                messages.append({"role": "assistant", "content": replies[i]})
        return messages

    def parse(self, user_turns: Sequence[str], prompt: Conversation) -> Task | None:
        """The task whose prompt has these (normalised) user turns, or ``None``."""
        for index, template in enumerate(self.templates):
            if len(template.turns) != len(user_turns):
                continue
            slots: dict[str, str] = {}
            for pattern, turn in zip(self._compiled[index], user_turns, strict=True):
                match = pattern.fullmatch(turn)
                if match is None:
                    break
                slots.update(match.groupdict())
            else:
                return Task(self.name, index, template.heldout, {**slots, **template.fixed},
                            prompt)
        return None

    def vocabulary(self) -> set[str]:
        """Every word the family's prompts and responses can use."""
        texts = [turn for t in self.templates for turn in t.turns]
        values = [v for t in self.templates for v in t.fixed.values()]
        return words_of([*texts, *values, *self.phrases()])

    @cached_property
    def _compiled(self) -> list[list[re.Pattern[str]]]:
        """Each template's turns as regular expressions, compiled on first use."""
        return [[_compile(turn, self.slot_patterns) for turn in t.turns] for t in self.templates]


def _compile(turn: str, slot_patterns: Mapping[str, str]) -> re.Pattern[str]:
    """A turn template as a regular expression over normalised text."""
    parts: list[str] = []
    position = 0
    for match in _FIELD.finditer(turn):
        parts.append(re.escape(normalize(turn[position:match.start()])))
        name = match.group(1)
        parts.append(f"(?P<{name}>{slot_patterns[name]})")
        position = match.end()
    parts.append(re.escape(normalize(turn[position:])))
    # Prompts are matched in normalised form: exactly one space between tokens.
    return re.compile(" ".join(p for p in parts if p))


def alternatives(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words`` (longest first)."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
