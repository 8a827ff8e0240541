"""The report's figures, drawn with matplotlib's Agg backend and embedded in the page.

Each figure becomes an ``<img>`` whose source is the SVG itself as a base64
``data:`` URI. SVG rather than PNG: it stays sharp at any zoom and in print,
and its text is drawn as paths, so it looks the same without matplotlib's
fonts installed. An ``<img>`` rather than SVG markup inlined in the page: the
figure cannot touch the page (matplotlib reuses element ids from figure to
figure, and an image runs no script), and a browser can say whether each
one loaded.
"""

from __future__ import annotations

import base64
import io
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from alignkit.eval import plots
from alignkit.eval.stats import Interval
from alignkit.pipeline.report_data import TrainingRun
from alignkit.pipeline.report_html import Html, escape

# No date or creator in the file, so the same data gives the same bytes.
_SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def color(index: int) -> str:
    """The colour of the ``index``-th policy or series, the same in every figure."""
    return _COLORS[index % len(_COLORS)]


def image(svg: bytes, caption: str) -> Html:
    """An SVG document as a ``<figure>`` with an embedded image and its caption."""
    encoded = base64.b64encode(svg).decode("ascii")
    return Html(f'<figure><img alt="{escape(caption)}" src="data:image/svg+xml;base64,'
                f'{encoded}"><figcaption>{escape(caption)}</figcaption></figure>')


def embed(fig, caption: str) -> Html:
    """Render a matplotlib figure into the page and close it."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata=_SVG_METADATA)
    plt.close(fig)
    return image(buffer.getvalue(), caption)


def embed_saved(draw: Callable[[Path], list[Path]], caption: str) -> Html:
    """Embed a figure drawn by one of :mod:`alignkit.eval.plots`' functions (which save files)."""
    with tempfile.TemporaryDirectory() as folder:
        (path,) = draw(Path(folder) / "figure")
        return image(path.read_bytes(), caption)


def _errors(values: Sequence[Interval | None]) -> tuple[np.ndarray, np.ndarray]:
    """Heights and ``(2, n)`` error-bar lengths; missing figures draw nothing."""
    heights = np.array([v.value if v else math.nan for v in values], dtype=np.float64)
    lows = np.array([v.low if v else math.nan for v in values], dtype=np.float64)
    highs = np.array([v.high if v else math.nan for v in values], dtype=np.float64)
    errors = np.nan_to_num(np.stack([heights - lows, highs - heights]), nan=0.0)
    return np.nan_to_num(heights), np.clip(errors, 0.0, None)


def _panels(keys: Sequence[str]) -> list[list[str]]:
    """Keys grouped into panels: a held-out ``eval_KEY`` shares the panel of ``KEY``."""
    panels = [[k] for k in keys if not (k.startswith("eval_") and k[5:] in keys)]
    for panel in panels:
        if f"eval_{panel[0]}" in keys:
            panel.append(f"eval_{panel[0]}")
    return panels


def _integer_steps(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def training_curves(run: TrainingRun, keys: Sequence[str]) -> Html:
    """One small panel per metric against the step; a held-out figure joins its training one."""
    plt = _pyplot()
    panels = _panels(keys)
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for index, key in enumerate(panel):
            steps, values = zip(*run.series[key], strict=True)
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, color=color(index),
                    label=key)
        if len(panel) > 1:
            ax.legend(fontsize=7)
        ax.set(title=" / ".join(panel), xlabel="step")
        _integer_steps(ax)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return embed(fig, f"{run.name} ({run.kind}): {', '.join(keys)} against the training step")


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[Interval | None]], *,
                 title: str, ylabel: str, caption: str,
                 reference: float | None = None) -> Html:
    """Bars for each group, one per series, with 95% error bars; an optional reference line.

    A series with no figure at all is left out; a single missing figure draws no bar.
    """
    plt = _pyplot()
    series = {name: values for name, values in series.items() if any(values)}
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.5 * len(groups) * len(series) + 2.5), 3.6))
    positions = np.arange(len(groups), dtype=np.float64)
    for index, (name, values) in enumerate(series.items()):
        heights, errors = _errors(values)
        ax.bar(positions + (index - (len(series) - 1) / 2) * width, heights, width, yerr=errors,
               capsize=3, label=name, color=color(index), alpha=0.85)
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1)
    ax.set_xticks(positions, groups, rotation=20 if len(groups) > 4 else 0)
    ax.set(title=title, ylabel=ylabel)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="y", alpha=0.3)
    return embed(fig, caption)


def interval_bars(intervals: Mapping[str, Interval], *, title: str, ylabel: str, caption: str,
                  reference: float | None = None) -> Html:
    """One bar per named figure with its error bar (:func:`alignkit.eval.plots.interval_bars`)."""
    return embed_saved(lambda stem: plots.interval_bars(
        intervals, stem, title=title, ylabel=ylabel, reference=reference, formats=("svg",)),
        caption)


def _point(ax, x: Interval, y: Interval, name: str, index: int) -> None:
    (xv,), xerr = _errors([x])
    (yv,), yerr = _errors([y])
    ax.errorbar([xv], [yv], xerr=xerr, yerr=yerr, fmt="o", color=color(index), capsize=3)
    ax.annotate(name, (xv, yv), textcoords="offset points", xytext=(5, 5), fontsize=8)


def scores_against_kl(points: Sequence[tuple[str, Interval, Mapping[str, Interval]]],
                      caption: str) -> Html:
    """Each score (gold, every proxy) against KL from the baseline, one point per policy.

    ``points`` is ``(policy, kl, {score name: interval})``; each score gets its
    own panel (the scales differ), points joined in order of KL.
    """
    plt = _pyplot()
    names = list(dict.fromkeys(score for _, _, scores in points for score in scores))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    order = sorted(range(len(points)), key=lambda i: points[i][1].value)
    for ax, score in zip(axes.flat, names, strict=True):
        drawn = [i for i in order if score in points[i][2]]
        ax.plot([points[i][1].value for i in drawn], [points[i][2][score].value for i in drawn],
                color="lightgray", zorder=0)
        for i in drawn:
            _point(ax, points[i][1], points[i][2][score], points[i][0], i)
        ax.set(xlabel="KL from the baseline (nats per response)", ylabel=score, title=score)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return embed(fig, caption)


def proxy_and_gold(run: TrainingRun) -> Html:
    """The proxy score and the gold score over training, each as its change since the start."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, label, line_color in (("score", "proxy reward (trained on)", "tab:orange"),
                                   ("gold_score", "gold reward", "tab:green")):
        steps, values = zip(*run.series[key], strict=True)
        ax.plot(steps, np.asarray(values) - values[0], label=label, color=line_color)
    ax.axhline(0, color="black", linewidth=0.8)
    _integer_steps(ax)
    ax.set(xlabel="step", ylabel="change since the first logged step", title=run.name)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return embed(fig, f"{run.name}: proxy and gold reward over training (change since the "
                      "first logged step); a widening gap is reward hacking")


def tradeoff(points: Sequence[tuple[str, Interval, Interval]], *, xlabel: str, ylabel: str,
             caption: str) -> Html:
    """One point per policy with error bars on both axes: ``(name, x, y)``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for index, (name, x, y) in enumerate(points):
        _point(ax, x, y, name, index)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{ylabel} against {xlabel}")
    ax.grid(alpha=0.3)
    return embed(fig, caption)
