"""The pipeline's eval stage: every policy against one baseline, every reward model against gold.

``run_eval_stage(cfg, out_dir)`` works in phases, holding at most two models
in memory at once:

1. read and check every input (:mod:`alignkit.pipeline.eval_inputs`);
2. sample the baseline once (seed ``seed``) on the prompts and on the harmful
   and harmless prompts; then each policy (seed ``seed + 1``) on the same
   prompts, measuring KL(policy ‖ baseline) on its responses while both are
   loaded (:mod:`alignkit.eval.kl`);
3. score every response to the prompts with the judge
   (:func:`~alignkit.eval.judges.make_judge`; with ``gold`` also each gold
   aspect) and mark refusals (the lab's own test on lab prompts, else
   ``refusal_detector``);
4. score the responses with each reward model (its proxy reward, tokenised as
   the online trainers do) and the ``rm_pairs`` pairs (accuracy against their
   true order);
5. write ``evaluation.json`` last (see ``docs/evaluation.md``), after
   ``samples.jsonl``, ``responses.jsonl`` and ``rm_pairs.jsonl``.

Every model sees the same baseline responses, so every win rate is measured
against the same draw.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from alignkit.config import Section
from alignkit.pipeline.report_results import EVALUATION_FILE

SAMPLES = "samples.jsonl"
RESPONSES = "responses.jsonl"
RM_PAIRS = "rm_pairs.jsonl"
JUDGES = "gold, rm:PATH, fn:MODULE:FUNCTION or fn:FILE.py:FUNCTION"


class StageGeneration(Section):
    """How every model samples its responses (the same settings for all)."""

    max_new_tokens: int = Field(48, gt=0, description=(
        "Most tokens per response; a response cut here did not end."))
    temperature: float = Field(1.0, ge=0, description=(
        "Sampling temperature; 0 is greedy decoding. KL is measured between the "
        "distributions softmax(logits / temperature)."))
    top_p: float = Field(1.0, gt=0, le=1, description=(
        "Nucleus size; below 1 the KL estimate is biased (the evaluation notes it)."))
    batch_size: int = Field(32, gt=0, description=(
        "Prompts per generation batch, and sequences per scoring pass."))
    max_prompt_length: int = Field(512, gt=0, description=(
        "A longer prompt keeps its last tokens."))
    chat: bool = Field(False, description=(
        "Wrap plain-text prompts as one user message in the chat template (conversations "
        "always use it)."))


class EvalStageConfig(Section):
    """The eval stage: policies compared with a baseline, reward models scored on gold pairs.

    Paths are relative to the working directory; a model is a model directory or
    a finished run directory (its final/).
    """

    baseline: str = Field(description=(
        "The model every policy is compared with (e.g. the SFT run)."))
    baseline_name: str | None = Field(None, description=(
        "The baseline's name in the results; default: its directory's name (the run's name "
        "for a final/ directory)."))
    policies: dict[str, str] = Field(min_length=1, description=(
        "Name -> model or run directory of each policy to evaluate."))
    judge: str = Field(description=(
        f"Scores each response, as alignkit eval policy --judge: {JUDGES}. gold also reports "
        "every aspect of the lab's gold reward."))
    prompts: str = Field(description=(
        "Prompts file: a data file with a prompt column (and optionally category), or a .txt "
        "file with one prompt per line."))
    prompt_field: str = Field("prompt", description=(
        "Column holding the prompt, in prompts, harmful and harmless."))
    reward_models: dict[str, str] = Field(default_factory=dict, description=(
        "Name -> reward model or rm run directory: each scores rm_pairs and gives every "
        "policy's responses a proxy reward."))
    rm_pairs: str | None = Field(None, description=(
        "Preference pairs whose chosen response is truly better (the lab's "
        "gold_pairs_eval.jsonl), optionally with annotator votes in 'labels'."))
    harmful: str | None = Field(None, description=(
        "Prompts that should be refused: each model's refusal rate."))
    harmless: str | None = Field(None, description=(
        "Harmless prompts that sound harmful: each model's over-refusal rate."))
    refusal_detector: str = Field("rules", description=(
        "Refusal detector for prompts that are not lab prompts: rules, or "
        "classifier:PATH[:LABEL] (lab prompts use the lab's own test)."))
    generation: StageGeneration = Field(default_factory=StageGeneration)
    tie_tolerance: float = Field(0.0, ge=0, description=(
        "Judge score differences at most this large are ties (half a win)."))
    seed: int = Field(0, ge=0, description=(
        "The baseline samples with seed, every policy with seed + 1; the bootstrap uses seed."))
    samples: int = Field(12, ge=0, description=(
        "Prompts kept in samples.jsonl with every model's response, spread over categories."))
    resamples: int = Field(1000, ge=0, description="Bootstrap resamples per 95% interval.")
    device: str = Field("auto", description=(
        "auto (the first CUDA device when there is one), cpu, cuda, cuda:1 ..."))
    dtype: Literal["fp32", "bf16", "fp16"] = Field("fp32", description=(
        "Dtype the weights are loaded in."))

    @field_validator("judge")
    @classmethod
    def _known_judge(cls, value: str) -> str:
        if value != "gold" and not (value.startswith(("rm:", "fn:")) and len(value) > 3):
            raise ValueError(f"unknown judge '{value}'; expected {JUDGES}")
        return value

    @field_validator("refusal_detector")
    @classmethod
    def _known_detector(cls, value: str) -> str:
        if value != "rules" and not (value.startswith("classifier:") and len(value) > 11):
            raise ValueError(f"unknown refusal detector '{value}'; expected rules or "
                             "classifier:PATH[:LABEL]")
        return value


def run_eval_stage(cfg: EvalStageConfig, out_dir: Path, *, console=None) -> Path:
    """Evaluate as ``cfg`` says, write the results into ``out_dir``; the evaluation.json path.

    A line per phase goes to ``console`` (a rich Console; default: stdout).

    Raises:
        ConfigError: a missing file or model, an unusable judge, naming the setting.
        DataError: a bad row in a data file.
    """
    from rich.console import Console

    from alignkit.pipeline.eval_inputs import read_stage_inputs

    console = console or Console(highlight=False)
    started = time.monotonic()

    def say(message: str) -> None:
        console.print(f"eval: {message} ({time.monotonic() - started:.1f} s)", markup=False,
                      highlight=False, soft_wrap=True)

    out_dir = Path(out_dir)
    (out_dir / EVALUATION_FILE).unlink(missing_ok=True)  # a failed rerun must not look finished
    inputs = read_stage_inputs(cfg)
    _check_judge(cfg.judge)
    # torch loads only once the cheap checks have passed, so bad input fails fast.
    from alignkit.eval.loading import resolve_device
    from alignkit.pipeline import eval_phases as phases

    device = resolve_device(cfg.device)
    results = phases.sample_models(cfg, inputs, device, say)
    phases.judge_responses(cfg, inputs, results, device, say)
    phases.mark_refusals(cfg, inputs, results, device)
    pair_rewards = phases.score_with_reward_models(cfg, inputs, results, device, say)
    path = _write(cfg, inputs, results, pair_rewards, out_dir)
    say(f"wrote {path}")
    return path


def _check_judge(spec: str) -> None:
    """Fail before sampling on a judge that cannot load (a reward model is checked earlier)."""
    from alignkit.errors import AlignkitError, ConfigError
    from alignkit.eval.judges import make_judge

    if not spec.startswith("rm:"):
        try:
            make_judge(spec)
        except AlignkitError as exc:
            raise ConfigError(f"eval stage: judge: {exc}") from None


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    from alignkit.atomic import atomic_write_text
    from alignkit.eval.results import to_jsonable

    atomic_write_text(path, "".join(json.dumps(to_jsonable(row), ensure_ascii=False) + "\n"
                                    for row in rows))


def _write(cfg: EvalStageConfig, inputs, results: dict, pair_rewards: dict,
           out_dir: Path) -> Path:
    from alignkit.atomic import atomic_write_text
    from alignkit.pipeline import eval_figures as figures
    from alignkit.pipeline.eval_inputs import spread_indices

    out_dir.mkdir(parents=True, exist_ok=True)
    prompts = inputs.sets["prompts"]
    _write_jsonl(out_dir / RESPONSES, figures.response_rows(inputs.sets, results))
    if inputs.pairs:
        _write_jsonl(out_dir / RM_PAIRS, figures.pair_rows(inputs.pairs, inputs.votes,
                                                             pair_rewards))
    _write_jsonl(out_dir / SAMPLES, figures.sample_rows(
        prompts, spread_indices(prompts.categories, cfg.samples), results))
    document = _document(cfg, inputs, results, pair_rewards)
    path = out_dir / EVALUATION_FILE
    atomic_write_text(path, json.dumps(document, indent=2, ensure_ascii=False,
                                       allow_nan=False) + "\n")
    return path


def _document(cfg: EvalStageConfig, inputs, results: dict, pair_rewards: dict) -> dict:
    from alignkit import __version__
    from alignkit.pipeline import eval_figures as figures

    options = {"resamples": cfg.resamples, "seed": cfg.seed}
    baseline = results[inputs.baseline]
    policies = {name: figures.model_entry(
        model, None if name == inputs.baseline else baseline, top_p=cfg.generation.top_p,
        tie_tolerance=cfg.tie_tolerance, options=options) for name, model in results.items()}
    reward_models = {name: figures.reward_model_entry(path, pair_rewards.get(name),
                                                      inputs.votes, options)
                     for name, path in cfg.reward_models.items()}
    files = {"samples": SAMPLES, "responses": RESPONSES}
    if inputs.pairs:
        files["rm_pairs"] = RM_PAIRS
    return {
        "kind": "pipeline_eval",
        "alignkit_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "judge": cfg.judge,
        "prompts": len(inputs.sets["prompts"].prompts),
        "baseline": inputs.baseline,
        "policies": policies,
        "reward_models": reward_models,
        **files,
        "data": _data(cfg, inputs),
        "settings": cfg.model_dump(mode="json"),
    }


def _data(cfg: EvalStageConfig, inputs) -> dict[str, Any]:
    """Each input file with its rows, and which refusal test its prompts got."""
    data: dict[str, Any] = {}
    for name, prompt_set in inputs.sets.items():
        data[name] = {"path": prompt_set.path, "rows": len(prompt_set.prompts),
                      "lab_prompts": prompt_set.lab}
        if name != "prompts":
            data[name]["refusals"] = "lab" if prompt_set.lab else cfg.refusal_detector
    if cfg.rm_pairs is not None:
        data["rm_pairs"] = {"path": cfg.rm_pairs, "rows": len(inputs.pairs)}
    return data
