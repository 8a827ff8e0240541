"""The eval stage's inputs, read and checked before any model loads.

Every file and model the stage names is checked first, so a typo fails in a
second with the setting's name, not after minutes of sampling. Prompt files
are read with their ``category`` column, and each is tagged as *lab* prompts
when every prompt is one the lab's templates produce (then the lab's own
refusal test applies, and the gold judge can score them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.data.readers import read_records
from alignkit.data.schema import PreferencePair, Text
from alignkit.errors import AlignkitError, ConfigError, DataError
from alignkit.eval.annotators import Votes, pair_votes
from alignkit.eval.inputs import PROMPT_TEXT_SUFFIXES, read_prompts

REFUSAL_SETS = {"harmful": "refusal_rate", "harmless": "over_refusal_rate"}
"""Prompt sets sampled for refusals -> the figure each one gives."""


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one file.

    Attributes:
        path: the file, as configured.
        prompts: each prompt as the data holds it (text or a list of messages).
        categories: each row's ``category`` column, ``None`` where it has none.
        lab: every prompt is a lab prompt.
    """

    path: str
    prompts: list[Text]
    categories: list[str | None]
    lab: bool


@dataclass(frozen=True)
class StageInputs:
    """What the stage evaluates.

    Attributes:
        baseline: the baseline's name.
        models: name -> model path, the baseline first, then the policies in order.
        sets: ``prompts``, and ``harmful`` / ``harmless`` when configured.
        pairs: the ``rm_pairs`` rows (empty without them), with each row's panel votes.
    """

    baseline: str
    models: dict[str, str]
    sets: dict[str, PromptSet]
    pairs: list[PreferencePair]
    votes: list[Votes]


def baseline_name(cfg: Any) -> str:
    """``baseline_name``, else the baseline directory's name (its run's, for a ``final/``)."""
    if cfg.baseline_name:
        return cfg.baseline_name
    path = Path(cfg.baseline)
    return path.parent.name if path.name == "final" and path.parent.name else path.name


def read_stage_inputs(cfg: Any) -> StageInputs:
    """Check every path and name of ``cfg`` (an ``EvalStageConfig``) and read its data.

    Raises:
        ConfigError: a file or model is missing, or a name is taken twice, naming the setting.
        DataError: a bad row in a data file, naming the file, row and field.
    """
    baseline = baseline_name(cfg)
    if baseline in cfg.policies:
        raise ConfigError(f"eval stage: policies.{baseline} has the baseline's name "
                          f"'{baseline}'; rename the policy or set baseline_name")
    models = {baseline: cfg.baseline, **cfg.policies}
    for field, path in [("baseline", cfg.baseline),
                        *((f"policies.{n}", p) for n, p in cfg.policies.items())]:
        _check_model(field, path, reward_model=False)
    for name, path in cfg.reward_models.items():
        _check_model(f"reward_models.{name}", path, reward_model=True)
    if cfg.judge.startswith("rm:"):
        _check_model("judge", cfg.judge.removeprefix("rm:"), reward_model=True)
    files = {"prompts": cfg.prompts, "harmful": cfg.harmful, "harmless": cfg.harmless,
             "rm_pairs": cfg.rm_pairs}
    for field, path in files.items():
        if path is not None and not Path(path).exists():
            raise ConfigError(f"eval stage: {field}: file '{path}' does not exist")
    sets = {name: read_prompt_set(files[name], cfg.prompt_field)
            for name in ("prompts", *REFUSAL_SETS) if files[name] is not None}
    if cfg.judge == "gold" and not sets["prompts"].lab:
        raise ConfigError(f"eval stage: judge gold scores lab prompts only, and '{cfg.prompts}' "
                          "holds prompts the lab's templates do not produce; use rm:PATH or "
                          "fn:MODULE:FUNCTION")
    pairs = read_pairs(cfg.rm_pairs) if cfg.rm_pairs is not None else []
    return StageInputs(baseline, models, sets, pairs, pair_votes(pairs))


def _check_model(field: str, path: str, *, reward_model: bool) -> None:
    from alignkit.eval.loading import check_is_reward_model
    from alignkit.rundir import resolve_model_dir

    try:
        directory = resolve_model_dir(path)
        if reward_model:
            check_is_reward_model(directory)
    except AlignkitError as exc:
        raise ConfigError(f"eval stage: {field}: {exc}") from None


def read_prompt_set(path: str, field: str) -> PromptSet:
    """The prompts of ``path`` (``field`` holds each), with categories and the lab tag."""
    prompts = read_prompts(path, field=field)
    return PromptSet(str(path), prompts, _categories(Path(path), len(prompts)),
                     all(is_lab_prompt(p) for p in prompts))


def _categories(path: Path, rows: int) -> list[str | None]:
    if path.suffix.lower() in PROMPT_TEXT_SUFFIXES:
        return [None] * rows
    values = [(record.data or {}).get("category") for record in read_records(path)]
    return [value if isinstance(value, str) else None for value in values]


def is_lab_prompt(prompt: Text) -> bool:
    """Whether the lab's templates produce ``prompt``."""
    from alignkit.lab.prompts import parse_prompt

    try:
        parse_prompt(prompt)
    except DataError:
        return False
    return True


def read_pairs(path: str) -> list[PreferencePair]:
    """The preference pairs of ``path``; any bad row stops the stage (strict)."""
    from alignkit.data.validate import load_examples

    return list(load_examples(path, "pairs").examples)


def spread_indices(categories: Sequence[str | None], count: int) -> list[int]:
    """``count`` row indices spread over categories, in file order.

    Categories take turns in the order they first appear, each giving its next
    row, until ``count`` rows are chosen; the result is sorted. The same rows
    give the same choice.
    """
    groups: dict[str | None, list[int]] = {}
    for index, category in enumerate(categories):
        groups.setdefault(category, []).append(index)
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(count, len(categories)):
        for members in groups.values():
            if depth < len(members) and len(chosen) < count:
                chosen.append(members[depth])
        depth += 1
    return sorted(chosen)
