"""Report sections drawn from the eval stage's ``evaluation.json``.

Each function takes the :class:`~alignkit.pipeline.report_data.Evaluation`
(``None`` when the pipeline has none) and returns the section's parts; what
the evaluation did not measure becomes a "not in this run" note.
"""

from __future__ import annotations

from alignkit.eval.stats import Interval
from alignkit.pipeline import report_plots
from alignkit.pipeline.report_html import Html, interval, note, number, paragraph, table
from alignkit.pipeline.report_results import Evaluation, PolicyResult

NO_EVALUATION = "evaluation.json (the pipeline has no finished eval stage)"
ZERO = Interval(0.0, 0.0, 0.0, 0)


def reward_model_section(evaluation: Evaluation | None) -> list[Html]:
    """Each reward model's accuracy against the gold order, beside the annotators' ceiling."""
    if evaluation is None:
        return [note(NO_EVALUATION)]
    models = [m for m in evaluation.reward_models.values() if m.accuracy is not None]
    if not models:
        return [note("reward models scored on held-out pairs (eval stage: reward_models and "
                     "rm_pairs)")]
    chart = report_plots.grouped_bars(
        [m.name for m in models],
        {"reward model": [m.accuracy for m in models],
         "annotator majority (ceiling)": [m.ceiling for m in models]},
        title="Held-out accuracy against the gold order", ylabel="accuracy", reference=0.5,
        caption="Accuracy of each reward model and of the annotators' majority vote against "
                "the gold order, with 95% intervals; the dashed line is a coin (0.5).")
    rows = [[m.name, number(m.pairs), interval(m.accuracy), interval(m.ceiling)]
            for m in models]
    return [chart, table(["reward model", "pairs", "accuracy", "annotator ceiling"], rows)]


def gold_section(evaluation: Evaluation | None) -> list[Html]:
    """The gold reward per aspect for every policy, baseline first."""
    if evaluation is None:
        return [note(NO_EVALUATION)]
    policies = [p for p in evaluation.policies.values() if p.aspects]
    if not policies:
        return [note(f"gold reward per aspect (the judge was {evaluation.judge}; aspects need "
                     "the lab's gold judge)")]
    aspects = list(dict.fromkeys(a for p in policies for a in p.aspects))
    chart = report_plots.grouped_bars(
        aspects, {p.name: [p.aspects.get(a) for a in aspects] for p in policies},
        title="Gold reward by aspect", ylabel="mean gold score",
        caption=f"Mean gold score per aspect with 95% intervals (baseline: "
                f"{evaluation.baseline}); verbosity is a penalty, lower is better.")
    rows = [[p.name, *(interval(p.aspects.get(a)) for a in aspects)] for p in policies]
    return [chart, table(["policy", *aspects], rows)]


def win_rate_section(evaluation: Evaluation | None) -> list[Html]:
    """Each policy's win rate over the baseline under the judge."""
    if evaluation is None:
        return [note(NO_EVALUATION)]
    policies = [p for p in evaluation.aligned() if p.win_rate is not None]
    if not policies:
        return [note("win rates against the baseline (the evaluation has no policy besides "
                     "the baseline)")]
    chart = report_plots.interval_bars(
        {p.name: p.win_rate.rate for p in policies}, reference=0.5,
        title=f"Win rate over {evaluation.baseline} ({evaluation.judge} judge)",
        ylabel="win rate",
        caption=f"Win rate of each policy over {evaluation.baseline} with 95% intervals; the "
                "line at 0.5 is a policy no better than the baseline.")
    rows = [[p.name, interval(p.win_rate.rate), p.win_rate.wins, p.win_rate.ties,
             p.win_rate.losses] for p in policies]
    return [chart, table(["policy", "win rate", "wins", "ties", "losses"], rows)]


def _scores(evaluation: Evaluation, policy: PolicyResult) -> dict[str, Interval]:
    """The scores a policy is plotted at against KL: gold (or the judge's), then each proxy."""
    scores = {}
    if policy.gold is not None:
        scores["gold reward"] = policy.gold
    elif policy.score is not None:
        scores[f"{evaluation.judge} judge score"] = policy.score
    scores |= {f"proxy: {name}": value for name, value in policy.proxy.items()}
    return scores


def kl_section(evaluation: Evaluation | None) -> list[Html]:
    """KL from the baseline per policy, and the scores against it (over-optimisation)."""
    if evaluation is None:
        return [note(NO_EVALUATION)]
    policies = [p for p in evaluation.aligned() if p.kl is not None]
    unmeasured = [note(f"KL of {p.name}" + (f" ({p.kl_note})" if p.kl_note else ""))
                  for p in evaluation.aligned() if p.kl is None]
    if not policies:
        return unmeasured or [note("KL from the baseline (the evaluation has no policy "
                                   "besides the baseline)")]
    parts = [*unmeasured, report_plots.interval_bars(
        {p.name: p.kl for p in policies}, title=f"KL from {evaluation.baseline}",
        ylabel="nats per response",
        caption=f"KL(policy ‖ {evaluation.baseline}) per response with 95% intervals.")]
    baseline = evaluation.policies.get(evaluation.baseline)
    points = [(p.name, p.kl, _scores(evaluation, p)) for p in policies]
    if baseline is not None:
        points.insert(0, (baseline.name, ZERO, _scores(evaluation, baseline)))
    if any(scores for _, _, scores in points):
        parts.append(report_plots.scores_against_kl(
            [pt for pt in points if pt[2]],
            caption="Scores against KL from the baseline, one point per policy (the baseline "
                    "at 0). The proxy reward may keep rising with KL while the gold reward "
                    "turns down: over-optimisation."))
    else:
        parts.append(note("judge or proxy scores to plot against KL"))
    names = list(dict.fromkeys(n for _, _, scores in points for n in scores))
    rows = [[name, "0 (baseline)" if kl is ZERO else interval(kl),
             *(interval(scores.get(n)) for n in names)] for name, kl, scores in points]
    parts.append(table(["policy", "KL", *names], rows))
    parts += [paragraph(f"KL of {p.name}: {p.kl_note}") for p in policies if p.kl_note]
    return parts


def _rates_part(evaluation: Evaluation) -> list[Html]:
    policies = [p for p in evaluation.policies.values()
                if p.refusal_rate is not None or p.over_refusal_rate is not None]
    if not policies:
        return [note("refusal rates (eval stage: harmful and harmless prompt files)")]
    chart = report_plots.grouped_bars(
        [p.name for p in policies],
        {"refusal on harmful prompts": [p.refusal_rate for p in policies],
         "over-refusal on harmless prompts": [p.over_refusal_rate for p in policies]},
        title="Refusals", ylabel="share of prompts",
        caption="Refusal rate on harmful prompts (higher is safer) and over-refusal rate on "
                "harmless prompts that look risky (lower is more helpful), with 95% intervals.")
    rows = [[p.name, interval(p.refusal_rate), interval(p.over_refusal_rate)] for p in policies]
    return [chart, table(["policy", "refusal rate (harmful)", "over-refusal rate (harmless)"],
                         rows)]


def _tradeoff_part(evaluation: Evaluation) -> list[Html]:
    points = [(p.name, p.aspects["helpfulness"], p.aspects["harmlessness"])
              for p in evaluation.policies.values()
              if "helpfulness" in p.aspects and "harmlessness" in p.aspects]
    if not points:
        return [note("helpfulness and harmlessness per policy (they need the gold judge)")]
    return [report_plots.tradeoff(
        points, xlabel="helpfulness", ylabel="harmlessness",
        caption="Mean gold helpfulness and harmlessness per policy with 95% intervals: up and "
                "to the right is better; the step from an unconstrained to a constrained run "
                "shows what the constraint buys in harmlessness and costs in helpfulness."),
        table(["policy", "helpfulness", "harmlessness"],
              [[name, interval(x), interval(y)] for name, x, y in points])]


def safety_section(evaluation: Evaluation | None) -> list[Html]:
    """Refusal and over-refusal rates, and helpfulness against harmlessness."""
    if evaluation is None:
        return [note(NO_EVALUATION)]
    return _rates_part(evaluation) + _tradeoff_part(evaluation)


def headline(evaluation: Evaluation) -> list[Html]:
    """The summary's figures: one row per policy."""
    about = (f"Judge: {evaluation.judge}; prompts: {number(evaluation.prompts)}; baseline: "
             f"{evaluation.baseline}.")
    def win_rate(policy: PolicyResult) -> str:
        if policy.name == evaluation.baseline:
            return "baseline"
        return interval(policy.win_rate.rate if policy.win_rate else None)

    by_gold = evaluation.judge == "gold"  # the judge's score is then the gold total itself
    rows = [[p.name, interval(p.score), *([] if by_gold else [interval(p.gold)]), win_rate(p),
             interval(p.kl)] for p in evaluation.policies.values()]
    header = ["policy", "gold total" if by_gold else "judge score",
              *([] if by_gold else ["gold total"]), f"win rate over {evaluation.baseline}", "KL"]
    return [paragraph(about), table(header, rows)]
