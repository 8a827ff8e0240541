"""The eval stage's work on models: sampling, KL, judging, refusals, reward-model scores.

Each phase fills the :class:`~alignkit.pipeline.eval_figures.ModelResults` of
every model and frees what it loaded before the next begins. ``cfg`` is the
stage's :class:`~alignkit.pipeline.eval_stage.EvalStageConfig`, ``inputs`` its
:class:`~alignkit.pipeline.eval_inputs.StageInputs`, ``results`` the
:class:`~alignkit.pipeline.eval_figures.ModelResults` by model name.
"""

from __future__ import annotations

import gc
from collections.abc import Callable


def _free(device) -> None:
    gc.collect()
    if device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


def sample_models(cfg, inputs, device, say: Callable[[str], None]) -> dict:
    """Every model's responses to every prompt set; each policy's KL from the baseline."""
    from alignkit.eval.loading import load_policy
    from alignkit.eval.settings import GenerationSettings
    from alignkit.pipeline.eval_figures import ModelResults

    generation = GenerationSettings(**cfg.generation.model_dump())
    rows = sum(len(s.prompts) for s in inputs.sets.values())
    baseline = load_policy(cfg.baseline, dtype=cfg.dtype, device=device)
    results = {}
    for name, path in inputs.models.items():
        is_baseline = name == inputs.baseline
        say(f"sampling {name}{' (baseline)' if is_baseline else ''}: {rows} responses")
        policy = baseline if is_baseline else load_policy(path, dtype=cfg.dtype, device=device)
        samples = _sample_sets(policy, inputs.sets, generation,
                               seed=cfg.seed + (0 if is_baseline else 1))
        results[name] = ModelResults(path, samples)
        if not is_baseline:
            _measure_kl(results[name], policy, baseline, generation)
        policy = None
        _free(device)
    baseline = None
    _free(device)
    return results


def _sample_sets(loaded, sets: dict, generation, *, seed: int) -> dict:
    """One sampling call over every set's prompts (fuller batches), split back per set."""
    from alignkit.eval.generation import Samples, sample_responses

    prompts = [p for s in sets.values() for p in s.prompts]
    drawn = sample_responses(loaded.model, loaded.tokenizer, prompts, generation, seed=seed)
    split, start = {}, 0
    for name, prompt_set in sets.items():
        part = slice(start, start + len(prompt_set.prompts))
        split[name] = Samples(drawn.prompt_ids[part], drawn.response_ids[part],
                              drawn.texts[part], drawn.ended[part])
        start = part.stop
    return split


def _measure_kl(results, policy, baseline, generation) -> None:
    from alignkit.eval.kl import sample_terms
    from alignkit.eval.policy_eval import same_vocabulary

    if not same_vocabulary(policy.tokenizer, baseline.tokenizer):
        results.kl_note = ("its tokenizer differs from the baseline's, so KL over their token "
                           "distributions is undefined")
        return
    results.kl_terms = sample_terms(policy.model, baseline.model, results.samples["prompts"],
                                    temperature=generation.temperature,
                                    batch_size=generation.batch_size,
                                    pad_token_id=policy.tokenizer.pad_token_id or 0)


def judge_responses(cfg, inputs, results: dict, device, say) -> None:
    from alignkit.eval.judges import make_judge
    from alignkit.pipeline.eval_figures import gold_aspects

    say(f"judging {len(results)} models' responses ({cfg.judge})")
    judge = make_judge(cfg.judge, device=str(device), dtype=cfg.dtype,
                       batch_size=cfg.generation.batch_size)
    prompts = inputs.sets["prompts"].prompts
    for model in results.values():
        texts = model.samples["prompts"].texts
        model.scores = judge.score(prompts, texts)
        if cfg.judge == "gold":
            model.aspects = gold_aspects(prompts, texts)
    judge = None
    _free(device)


def _lab_refusals(texts: list[str]) -> list[bool]:
    from alignkit.lab import is_refusal

    return [is_refusal(t) for t in texts]


def mark_refusals(cfg, inputs, results: dict, device) -> None:
    """Whether each response to ``harmful`` and ``harmless`` refuses."""
    import numpy as np

    from alignkit.eval.refusal import make_detector
    from alignkit.pipeline.eval_inputs import REFUSAL_SETS

    detector = None
    for name in REFUSAL_SETS:
        if name not in inputs.sets:
            continue
        if inputs.sets[name].lab:
            test = _lab_refusals
        else:
            detector = detector or make_detector(cfg.refusal_detector, device=str(device))
            test = detector.detect
        for model in results.values():
            model.refused[name] = np.array(test(model.samples[name].texts), dtype=bool)


def score_with_reward_models(cfg, inputs, results: dict, device,
                              say) -> dict:
    """Each reward model's proxy reward of every response, and its rewards of ``rm_pairs``."""
    from alignkit.eval.rm_eval import score_pairs
    from alignkit.train.online_rewards import ModelSource

    prompts = inputs.sets["prompts"].prompts
    pair_rewards = {}
    for name, path in cfg.reward_models.items():
        say(f"reward model {name}: proxy rewards"
            + (f" and {len(inputs.pairs)} pairs" if inputs.pairs else ""))
        source = ModelSource(path, device=device, dtype=cfg.dtype,
                             batch_size=cfg.generation.batch_size)
        for model in results.values():
            rewards = source(prompts, model.samples["prompts"].texts)
            model.proxy[name] = rewards.double().numpy()
        if inputs.pairs:
            pair_rewards[name] = score_pairs(source.model, source.tokenizer, inputs.pairs,
                                             batch_size=cfg.generation.batch_size)
        source = None
        _free(device)
    return pair_rewards
