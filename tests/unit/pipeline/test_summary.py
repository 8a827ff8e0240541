"""The evaluation summary table printed at the end of ``alignkit demo`` and ``alignkit run``."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from alignkit.errors import DataError
from alignkit.pipeline.summary import summary_tables


def _i(value, low, high, n=330):
    return {"value": value, "low": low, "high": high, "n": n}


EVALUATION = {
    "kind": "pipeline_eval", "judge": "gold", "prompts": 330, "baseline": "sft",
    "policies": {
        "dpo": {"score": _i(0.5, 0.4, 0.6), "aspects": {"total": _i(0.61, 0.58, 0.64)},
                "win_rate": {"wins": 200, "ties": 30, "losses": 100,
                             "rate": _i(0.6515, 0.6, 0.7)},
                "kl": _i(3.25, 2.9, 3.6), "refusal_rate": _i(0.75, 0.6, 0.9, 120),
                "over_refusal_rate": _i(0.125, 0.05, 0.2, 120)},
        "sft": {"score": _i(0.4, 0.3, 0.5), "aspects": {"total": _i(0.42, 0.39, 0.45)},
                "refusal_rate": _i(0.25, 0.1, 0.4, 120),
                "over_refusal_rate": _i(0.0, 0.0, 0.0, 120)},
        "ppo": {"score": _i(0.3, 0.2, 0.4), "aspects": {"total": _i(0.5, None, None)},
                "win_rate": {"wins": 1, "ties": 0, "losses": 0, "rate": _i(1.0, 1.0, 1.0)},
                "kl": _i(12.0, 10.0, 14.0)},
    },
    "reward_models": {"rm": {"path": "runs/demo/rm", "accuracy": _i(0.7, 0.66, 0.74, 600),
                             "ceiling": _i(0.8, 0.77, 0.83, 600), "pairs": 600}},
}


def _render(tables) -> list[str]:
    console = Console(width=200, record=True, highlight=False)
    for table in tables:
        console.print(table)
    return [line.rstrip() for line in console.export_text().splitlines()]


def _row(lines, first_cell):
    return next(line.split("  ") for line in lines if line.strip().startswith(first_cell))


def test_one_row_per_policy_baseline_first_with_intervals(tmp_path):
    (tmp_path / "evaluation.json").write_text(json.dumps(EVALUATION))
    lines = _render(summary_tables(tmp_path))
    assert lines[0] == "evaluation: judge gold, 330 prompts, 95% intervals"
    header = [cell.strip() for cell in _row(lines, "policy") if cell.strip()]
    assert header == ["policy", "gold total", "win rate vs sft", "KL from sft",
                      "refusals on harmful", "over-refusals"]
    policies = [line.split()[0] for line in lines if line.strip().split(" ")[0] in
                ("sft", "dpo", "ppo")]
    assert policies == ["sft", "dpo", "ppo"]
    cells = [c.strip() for c in _row(lines, "dpo") if c.strip()]
    assert cells == ["dpo", "0.61 [0.58, 0.64]", "0.65 [0.60, 0.70]", "3.2 [2.9, 3.6]",
                     "0.75 [0.60, 0.90]", "0.12 [0.05, 0.20]"]
    cells = [c.strip() for c in _row(lines, "sft") if c.strip()]
    assert cells == ["sft", "0.42 [0.39, 0.45]", "baseline", "-", "0.25 [0.10, 0.40]",
                     "0.00 [0.00, 0.00]"]
    # Missing interval ends show the value alone; figures not measured show a dash.
    cells = [c.strip() for c in _row(lines, "ppo") if c.strip()]
    assert cells == ["ppo", "0.50", "1.00 [1.00, 1.00]", "12.0 [10.0, 14.0]", "-", "-"]


def test_reward_models_sit_below_with_the_annotator_ceiling(tmp_path):
    (tmp_path / "evaluation.json").write_text(json.dumps(EVALUATION))
    lines = _render(summary_tables(tmp_path))
    assert "reward models on held-out pairs ordered by the true reward" in lines
    cells = [c.strip() for c in _row(lines, "rm ") if c.strip()]
    assert cells == ["rm", "0.70 [0.66, 0.74]", "0.80 [0.77, 0.83]", "600"]


def test_another_judge_shows_its_score_and_no_reward_model_table(tmp_path):
    evaluation = {**EVALUATION, "judge": "rm:runs/rm", "reward_models": {}}
    (tmp_path / "evaluation.json").write_text(json.dumps(evaluation))
    tables = summary_tables(tmp_path)
    assert len(tables) == 1
    lines = _render(tables)
    assert [c.strip() for c in _row(lines, "dpo") if c.strip()][1] == "0.50 [0.40, 0.60]"
    assert [c.strip() for c in _row(lines, "policy") if c.strip()][1] == "judge score"


def test_a_missing_or_malformed_evaluation_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="evaluation.json: no such file"):
        summary_tables(tmp_path)
    (tmp_path / "evaluation.json").write_text(json.dumps({"judge": "gold"}))
    with pytest.raises(DataError, match="field 'policies'"):
        summary_tables(tmp_path)
    (tmp_path / "evaluation.json").unlink()
    (tmp_path / "evaluation.json").mkdir()  # a directory where the file should be
    with pytest.raises(DataError, match="evaluation.json: cannot read it"):
        summary_tables(tmp_path)
