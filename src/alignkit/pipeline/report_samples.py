"""The report's side-by-side samples: one prompt, every policy's response and its score.

Responses are model output, so untrusted: they go through
:func:`~alignkit.pipeline.report_html.escape` like every other text.
"""

from __future__ import annotations

from alignkit.pipeline.report_html import Html, element, note, number, paragraph, table
from alignkit.pipeline.report_results import Evaluation, Sample


def _policy_order(evaluation: Evaluation, samples: list[Sample]) -> list[str]:
    """The evaluation's order (baseline first), then any policy only the samples name."""
    names = list(evaluation.policies)
    for sample in samples:
        names += [n for n in sample.responses if n not in names]
    return names


def _sample(index: int, sample: Sample, names: list[str], baseline: str) -> list[Html]:
    title = f"Prompt {index}" + (f" ({sample.category})" if sample.category else "")
    present = [n for n in names if n in sample.responses]
    texts = [element("div", sample.responses[n][0], "response") for n in present]
    scores = [f"score {number(sample.responses[n][1])}" for n in present]
    header = [f"{n} (baseline)" if n == baseline else n for n in present]
    return [element("h3", title), element("div", sample.prompt, "prompt"),
            table(header, [texts, scores], cls="samples")]


def samples_section(evaluation: Evaluation | None, samples: list[Sample] | None) -> list[Html]:
    """Every kept prompt with the responses of the baseline and each policy, side by side."""
    if evaluation is None:
        return [note("samples.jsonl (the pipeline has no finished eval stage)")]
    if not samples:
        return [note("side-by-side samples (the eval stage's samples.jsonl is absent or empty)")]
    names = _policy_order(evaluation, samples)
    parts = [paragraph(f"The same prompts answered by {evaluation.baseline} (the baseline) and "
                       f"each policy; scores are the {evaluation.judge} judge's.")]
    for index, sample in enumerate(samples, start=1):
        parts += _sample(index, sample, names, evaluation.baseline)
    return parts
