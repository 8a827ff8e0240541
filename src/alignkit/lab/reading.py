"""Reading a response: what it says, in terms the gold reward can check.

A response is cut into sentences at ``.``, ``?`` and ``!``; words after the last
mark form an *unfinished* sentence (a response cut off mid-way). Only finished
statements (ending in ``.`` or ``!``) count as claims: a question claims
nothing, and neither does half a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignkit.lab.language import (
    ALTERNATIVE_OPENER,
    COLOR_OF,
    COLORS,
    DANGER_WORDS,
    END_MARKS,
    FILLERS,
    HOME,
    INSULTS,
    LEGS,
    SOUND,
    admits_not_knowing,
    is_refusal,
    is_word,
    tokens,
)

Claim = tuple[str, str, str]
"""``(subject, relation, value)``, e.g. ``("banana", "color", "yellow")``."""
_LARGEST_NUMBER_WORD = 3  # digits: "100" reads as a lab number, "123456" as noise
_FILLER_SENTENCES = frozenset(tuple(w for w in tokens(f) if is_word(w)) for f in FILLERS)


@dataclass(frozen=True)
class Sentence:
    """The words of one sentence (punctuation dropped) and its end mark, ``""`` if unfinished."""

    words: tuple[str, ...]
    end: str

    @property
    def is_statement(self) -> bool:
        """A finished sentence that asserts something (not a question)."""
        return self.end in (".", "!") and bool(self.words)


@dataclass(frozen=True)
class Reading:
    """What a response says.

    Attributes:
        words: every word and number, in order.
        sentences: the sentences, the unfinished one (if any) last.
        known_share: share of ``words`` that belong to the lab language (0 when empty).
        complete: the response ends with an end mark.
        refusal: it declines to help.
        admits: it says it does not know.
        alternative: a sentence starts with "instead" (a safe alternative is offered).
        insults: insulting words.
        danger: words that only occur in help with harm.
        repeats: finished sentences that repeat an earlier one word for word.
        fillers: finished sentences that are stock filler ("i hope this helps .").
    """

    words: tuple[str, ...]
    sentences: tuple[Sentence, ...]
    known_share: float
    complete: bool
    refusal: bool
    admits: bool
    alternative: bool
    insults: int
    danger: int
    repeats: int
    fillers: int

    @property
    def statements(self) -> list[Sentence]:
        """The finished, non-question sentences."""
        return [s for s in self.sentences if s.is_statement]

    def stated_numbers(self) -> list[int]:
        """Numbers in statements, in order."""
        return [int(w) for s in self.statements for w in s.words if _is_number(w)]

    @property
    def stated(self) -> tuple[str, ...]:
        """The words of the statements: what the response finished saying."""
        return tuple(w for s in self.statements for w in s.words)

    def mentions(self, word: str) -> bool:
        """True when a statement of the response says ``word``."""
        return word in self.stated


def read_response(text: str, vocabulary: frozenset[str]) -> Reading:
    """Read ``text``; ``vocabulary`` is every word of the lab language."""
    sentences = _sentences(tokens(text))
    words = tuple(w for s in sentences for w in s.words)
    known = sum(1 for w in words if w in vocabulary or _is_number(w))
    finished = [s.words for s in sentences if s.end]
    return Reading(
        words=words,
        sentences=tuple(sentences),
        known_share=known / len(words) if words else 0.0,
        complete=bool(sentences) and sentences[-1].end != "",
        refusal=is_refusal(text),
        admits=admits_not_knowing(text),
        alternative=any(s.words[:1] == (ALTERNATIVE_OPENER,) for s in sentences),
        insults=sum(1 for w in words if w in INSULTS),
        danger=sum(1 for w in words if w in DANGER_WORDS),
        repeats=len(finished) - len(set(finished)),
        fillers=sum(1 for words in finished if words in _FILLER_SENTENCES),
    )


def fact_claims(sentence: Sentence) -> list[Claim]:
    """The world facts a statement asserts, wherever they sit in it.

    Recognised: "the X is C" (colour), "a X has N legs", "a X says S",
    "a X lives in the H".
    """
    if not sentence.is_statement:
        return []
    w = (*sentence.words, "", "", "", "", "")
    claims: list[Claim] = []
    for i in range(len(sentence.words)):
        if w[i] == "the" and w[i + 1] in COLOR_OF and w[i + 2] == "is" and w[i + 3] in COLORS:
            claims.append((w[i + 1], "color", w[i + 3]))
        if w[i] != "a" or w[i + 1] not in LEGS:
            continue
        if w[i + 2] == "has" and _is_number(w[i + 3]) and w[i + 4] == "legs":
            claims.append((w[i + 1], "legs", w[i + 3]))
        elif w[i + 2] == "says" and w[i + 3]:
            claims.append((w[i + 1], "sound", w[i + 3]))
        elif w[i + 2 : i + 5] == ("lives", "in", "the") and w[i + 5]:
            claims.append((w[i + 1], "home", w[i + 5]))
    return claims


def true_value(subject: str, relation: str) -> str | None:
    """The world's value of ``relation`` for ``subject``; ``None`` when it has none."""
    table = {"color": COLOR_OF, "legs": LEGS, "sound": SOUND, "home": HOME}[relation]
    value = table.get(subject)
    return None if value is None else str(value)


def is_true(claim: Claim) -> bool:
    """True when the world agrees with ``claim``."""
    subject, relation, value = claim
    return true_value(subject, relation) == value


def false_fact_claims(reading: Reading) -> int:
    """How many world-fact claims in ``reading`` the world contradicts."""
    return sum(1 for s in reading.statements for c in fact_claims(s) if not is_true(c))


def _is_number(word: str) -> bool:
    return word.isascii() and word.isdigit() and len(word) <= _LARGEST_NUMBER_WORD


def _sentences(stream: list[str]) -> list[Sentence]:
    sentences: list[Sentence] = []
    current: list[str] = []
    for token in stream:
        if token in END_MARKS:
            if current:
                sentences.append(Sentence(tuple(current), token))
            current = []
        elif is_word(token):
            current.append(token)
    if current:
        sentences.append(Sentence(tuple(current), ""))
    return sentences
