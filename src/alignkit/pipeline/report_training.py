"""Report sections drawn from training histories: the curves, the events, reward hacking."""

from __future__ import annotations

from collections.abc import Mapping

from alignkit.pipeline import report_plots
from alignkit.pipeline.report_data import CURVE_KEYS, ONLINE_KINDS, TrainingRun
from alignkit.pipeline.report_html import Html, element, note, number, paragraph, table

ALARM_KINDS = ("alarm", "nan")


def alarm_count(run: TrainingRun | None) -> int:
    """Alarms and skipped non-finite steps the run recorded."""
    return 0 if run is None else sum(e.get("kind") in ALARM_KINDS for e in run.events)


def _curve_table(run: TrainingRun, keys: list[str]) -> Html:
    rows = []
    for key in keys:
        values = [v for _, v in run.series[key]]
        rows.append([key, len(values), number(values[0]), number(values[-1]),
                     number(min(values)), number(max(values))])
    return table(["metric", "points", "first", "last", "min", "max"], rows)


def events_table(run: TrainingRun) -> Html:
    """Warnings, alarms, resumes... one row each; alarms are highlighted."""
    if not run.events:
        return paragraph(f"{run.name}: no warnings or alarms recorded.")
    rows, classes = [], []
    for event in run.events:
        kind = str(event.get("kind", ""))
        if event.get("alarm"):
            kind = f"{kind}: {event['alarm']}"
        rows.append([number(event.get("step")), kind, str(event.get("message", ""))])
        classes.append("alarm" if event.get("kind") in ALARM_KINDS else None)
    return table(["step", "kind", "message"], rows, cls="events", row_classes=classes)


def run_parts(run: TrainingRun) -> list[Html]:
    """One training run: its chosen curves, their first and last values, its events."""
    parts = [element("h3", f"{run.name} ({run.kind})")]
    keys = run.chosen_keys()
    if keys:
        parts += [report_plots.training_curves(run, keys), _curve_table(run, keys)]
    elif not run.series:
        parts.append(note(f"metrics in {run.name}/metrics.jsonl (no rows logged yet)"))
    else:
        wanted = ", ".join(CURVE_KEYS.get(run.kind, ()))
        parts.append(note(f"metrics to plot in {run.name}/metrics.jsonl (no {wanted} and no "
                          "key with 'loss' in its name)"))
    others = [k for k in run.series if k not in keys]
    if others:
        parts.append(paragraph(f"Also logged: {', '.join(others)}."))
    parts.append(events_table(run))
    return parts


def training_section(runs: Mapping[str, TrainingRun | None]) -> list[Html]:
    """Every training stage, in pipeline order; a stage without metrics gets a note."""
    if not runs:
        return [note("training stages (sft, rm, dpo, ppo, rloo, grpo)")]
    parts: list[Html] = []
    for name, run in runs.items():
        if run is None:
            parts += [element("h3", name), note(f"metrics of stage {name} (no run directory "
                                                f"with metrics.jsonl in {name}/)")]
        else:
            parts += run_parts(run)
    return parts


def _hacking_rows(run: TrainingRun) -> list[object]:
    proxy = [v for _, v in run.series["score"]]
    gold = [v for _, v in run.series["gold_score"]]
    return [run.name, run.steps, number(proxy[0]), number(proxy[-1]),
            number(proxy[-1] - proxy[0]), number(gold[0]), number(gold[-1]),
            number(gold[-1] - gold[0])]


def reward_hacking_section(runs: Mapping[str, TrainingRun | None]) -> list[Html]:
    """Proxy score against gold score over training, for every online run that logged both."""
    tracked = [run for run in runs.values() if run is not None and run.kind in ONLINE_KINDS
               and run.series.get("score") and run.series.get("gold_score")]
    if not tracked:
        return [note("an online stage (ppo, rloo, grpo) that logged both score and gold_score "
                     "(set reward.log_gold: true)")]
    parts = [paragraph("The policy is trained on the proxy reward (score) and never sees the "
                       "gold reward. Both lines start at zero; while they rise together the "
                       "proxy is a good guide, and a proxy that keeps rising while the gold "
                       "reward stalls or falls is being exploited.")]
    parts += [report_plots.proxy_and_gold(run) for run in tracked]
    parts.append(table(["stage", "steps", "proxy first", "proxy last", "proxy change",
                        "gold first", "gold last", "gold change"],
                       [_hacking_rows(run) for run in tracked]))
    return parts
