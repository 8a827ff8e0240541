"""The HTML report on hand-written pipeline and run directories with known numbers."""

import base64
import importlib.util
import json
import re
from pathlib import Path

import pytest

from alignkit.errors import AlignkitError, DataError
from alignkit.eval.stats import Interval
from alignkit.pipeline.report import write_report
from alignkit.pipeline.report_data import TrainingRun
from alignkit.pipeline.report_html import interval, number, seconds

_spec = importlib.util.spec_from_file_location(
    "report_fixtures", Path(__file__).with_name("report_fixtures.py"))
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

IMAGE = re.compile(r'<img alt="[^"]*" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)">')


def sections(page: str) -> dict[str, str]:
    """Section id -> its markup."""
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, flags=re.S))


@pytest.fixture(scope="module")
def pipeline_page(tmp_path_factory) -> str:
    root = fixtures.build_pipeline(tmp_path_factory.mktemp("report") / "demo")
    path = write_report(root)
    assert path == root / "report.html"
    return path.read_text(encoding="utf-8")


def test_every_section_is_there_with_one_embedded_svg_per_plot(pipeline_page):
    found = sections(pipeline_page)
    assert tuple(found) == fixtures.SECTIONS
    for section_id, markup in found.items():
        assert len(IMAGE.findall(markup)) == fixtures.IMAGES.get(section_id, 0), section_id
    images = IMAGE.findall(pipeline_page)
    assert len(images) == sum(fixtures.IMAGES.values()) == pipeline_page.count("<img ")
    for encoded in images:
        svg = base64.b64decode(encoded).decode("utf-8")
        assert svg.startswith("<?xml") and "<svg" in svg
        assert not re.search(r'href="(https?:|file:)', svg)


def test_nothing_outside_the_file_is_referenced(pipeline_page):
    for forbidden in ("http://", "https://", 'src="file', "url(", "<script", "<link"):
        assert forbidden not in pipeline_page
    assert "<style>" in pipeline_page


def test_the_evaluation_figures_appear_in_the_tables(pipeline_page):
    found = sections(pipeline_page)
    assert "<td>0.712 [0.671, 0.754]</td><td>0.801 [0.763, 0.838]</td>" in found["reward-model"]
    assert "<td>rm</td><td>400</td>" in found["reward-model"]
    # dpo's aspects in the order of evaluation.json, then its total.
    assert ("<td>dpo</td><td>0.550 [0.510, 0.590]</td><td>0.810 [0.770, 0.850]</td>"
            "<td>0.940 [0.920, 0.960]</td><td>0.040 [0.020, 0.060]</td>"
            "<td>0.980 [0.970, 0.990]</td><td>1.274 [1.200, 1.350]</td>") in found["gold"]
    assert ("<td>dpo</td><td>0.755 [0.705, 0.802]</td><td>131</td><td>40</td><td>29</td>"
            in found["win-rate"])
    assert ("<td>ppo</td><td>0.575 [0.525, 0.627]</td><td>104</td><td>22</td><td>74</td>"
            in found["win-rate"])
    # The baseline sits at KL 0; each policy with its gold total and its proxy (rm) score.
    assert ("<td>sft</td><td>0 (baseline)</td><td>0.912 [0.850, 0.970]</td>"
            "<td>-0.250 [-0.400, -0.100]</td>") in found["kl"]
    assert ("<td>ppo</td><td>8.750 [8.100, 9.400]</td><td>1.105 [1.020, 1.190]</td>"
            "<td>2.375 [2.200, 2.550]</td>") in found["kl"]
    assert "<td>dpo</td><td>0.620 [0.500, 0.740]</td><td>0.080 [0.020, 0.160]</td>" \
        in found["safety"]
    assert "<td>ppo</td><td>0.610 [0.570, 0.650]</td><td>0.580 [0.530, 0.630]</td>" \
        in found["safety"]


def test_the_summary_lists_stages_and_headline_figures(pipeline_page):
    summary = sections(pipeline_page)["summary"]
    assert "6 of 6 stages done in 2 min 19 s." in summary  # 3.2+12.5+8+20.25+65+30 = 138.95 s
    assert ('<td>ppo</td><td>ppo</td><td><span class="status-done">done</span></td>'
            "<td>1 min 05 s</td><td>4</td><td>1</td>") in summary
    # Judged by gold, the judge's score is the gold total: one column, not two.
    assert ("<th>policy</th><th>gold total</th><th>win rate over sft</th><th>KL</th>"
            in summary)
    assert ("<td>dpo</td><td>1.274 [1.200, 1.350]</td>"
            "<td>0.755 [0.705, 0.802]</td><td>3.142 [2.900, 3.400]</td>") in summary


def test_training_curves_figures_and_alarms(pipeline_page):
    training = sections(pipeline_page)["training"]
    assert "<td>loss</td><td>4</td><td>2.000</td><td>1.000</td><td>1.000</td><td>2.000</td>" \
        in training
    assert "<td>eval_loss</td><td>1</td><td>1.125</td>" in training
    assert "Also logged: lr." in training
    assert ('<tr class="alarm"><td>4</td><td>alarm: proxy_up_gold_down</td>'
            in training)


def test_reward_hacking_shows_proxy_and_gold_changes(pipeline_page):
    """ppo's score goes 0.1 -> 1.2 (+1.1) while gold_score goes 0.5 -> 0.4 (-0.1)."""
    hacking = sections(pipeline_page)["reward-hacking"]
    assert ("<td>ppo</td><td>4</td><td>0.100</td><td>1.200</td><td>1.100</td>"
            "<td>0.500</td><td>0.400</td><td>-0.100</td>") in hacking


def test_responses_are_escaped(pipeline_page):
    samples = sections(pipeline_page)["samples"]
    assert "hello &lt;script&gt;alert(1)&lt;/script&gt; bob" in samples
    assert "user: say hello to &lt;b&gt;bob&lt;/b&gt;" in samples
    assert "<th>sft (baseline)</th><th>dpo</th><th>ppo</th>" in samples
    assert "<td>score 1.500</td><td>score 0.250</td><td>score -0.750</td>" in samples
    assert fixtures.SCRIPT not in pipeline_page


def test_a_run_directory_gets_its_curves_events_and_config(tmp_path):
    fixtures.write_training_runs(tmp_path)
    page = write_report(tmp_path / "ppo").read_text(encoding="utf-8")
    found = sections(page)
    assert tuple(found) == ("summary", "training", "reward-hacking", "config")
    assert len(IMAGE.findall(found["training"])) == 1
    assert len(IMAGE.findall(found["reward-hacking"])) == 1
    assert "<td>ppo</td><td>online</td><td>not finished (no complete final/)</td>" \
        "<td>4</td><td>1</td>" in found["summary"]
    assert "proxy score up while gold score down over 4 iterations" in found["training"]
    assert "lr: 0.001" in found["config"]

    sft = sections(write_report(tmp_path / "sft", tmp_path / "out" / "sft.html")
                   .read_text(encoding="utf-8"))
    assert tuple(sft) == ("summary", "training", "config")
    assert len(IMAGE.findall(sft["training"])) == 1
    assert "<td>sft</td><td>sft</td>" in sft["summary"]


def test_missing_evaluation_and_failed_stage_give_notes(tmp_path):
    root = fixtures.build_pipeline(tmp_path / "demo", evaluation=False)
    state = json.loads((root / "pipeline.json").read_text())
    state["stages"][5:] = [{"name": "grpo", "kind": "grpo", "status": "failed",
                            "seconds": 1.5, "started": 1.0, "finished": None},
                           {"name": "rloo", "kind": "rloo", "status": "running",
                            "seconds": 0.0, "started": 2.0, "finished": None}]
    (root / "pipeline.json").write_text(json.dumps(state))
    (root / "rloo").mkdir()
    (root / "rloo" / "config.yaml").write_text("output_dir: rloo\n")
    (root / "rloo" / "metrics.jsonl").write_text("")
    found = sections(write_report(root).read_text(encoding="utf-8"))
    assert tuple(found) == fixtures.SECTIONS
    for section_id in ("reward-model", "gold", "win-rate", "kl", "safety", "samples"):
        assert '<p class="note">not in this run: ' in found[section_id], section_id
        assert "<img" not in found[section_id]
    assert "not in this run: evaluation.json" in found["summary"]
    assert '<span class="status-failed">failed</span>' in found["summary"]
    assert '<span class="status-running">running</span>' in found["summary"]
    assert "not in this run: metrics of stage grpo" in found["training"]
    assert "not in this run: metrics in rloo/metrics.jsonl (no rows logged yet)" \
        in found["training"]
    assert len(IMAGE.findall(found["training"])) == 4
    assert len(IMAGE.findall(found["reward-hacking"])) == 1


def test_a_malformed_evaluation_names_file_and_field(tmp_path):
    root = fixtures.build_pipeline(tmp_path / "demo")
    path = root / "eval" / "evaluation.json"
    document = json.loads(path.read_text())
    document["policies"]["dpo"]["kl"] = 3.1
    path.write_text(json.dumps(document))
    with pytest.raises(DataError, match=r"evaluation\.json, field 'policies\.dpo\.kl'"):
        write_report(root)


def test_a_directory_that_is_neither_is_an_error(tmp_path):
    with pytest.raises(AlignkitError, match=rf"cannot report on {re.escape(str(tmp_path))}: "
                                            r"it holds neither.*pipeline\.json.*config\.yaml"):
        write_report(tmp_path)
    with pytest.raises(AlignkitError, match="does not exist"):
        write_report(tmp_path / "missing")
    assert not (tmp_path / "report.html").exists()


def test_cli_writes_the_report_and_refuses_a_non_run(tmp_path, cli):
    fixtures.write_training_runs(tmp_path)
    result = cli("report", tmp_path / "sft", "-o", tmp_path / "sft.html")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "sft.html")
    assert 'id="training"' in (tmp_path / "sft.html").read_text(encoding="utf-8")

    (tmp_path / "empty").mkdir()
    result = cli("report", tmp_path / "empty")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot report on {tmp_path / 'empty'}")
    assert "Traceback" not in result.stderr


def test_formats():
    assert number(0.5) == "0.500" and number(7) == "7" and number(float("nan")) == "—"
    assert number(None) == "—"
    assert interval(Interval(0.25, 0.125, 0.375, 8)) == "0.250 [0.125, 0.375]"
    assert interval(Interval(0.25, float("nan"), float("nan"), 1)) == "0.250"
    assert interval(None) == "—"
    assert (seconds(59.94), seconds(61.0), seconds(3725.0)) == ("59.9 s", "1 min 01 s",
                                                                "62 min 05 s")


def test_chosen_curves_fall_back_to_losses():
    """A ppo run that logged no score: its keys with "loss" in them, in logged order."""
    points = [(1, 1.0)]
    run = TrainingRun("ppo", "ppo", {"policy_loss": points, "lr": points, "value_loss": points},
                      [])
    assert run.chosen_keys() == ["policy_loss", "value_loss"]
    run.series["entropy"] = points
    assert run.chosen_keys() == ["entropy"]


def test_unmeasured_kl_and_ceiling_are_noted(tmp_path):
    """dpo's KL could not be estimated (null with the eval stage's reason); no panel ceiling."""
    root = fixtures.build_pipeline(tmp_path / "demo")
    path = root / "eval" / "evaluation.json"
    document = json.loads(path.read_text())
    document["policies"]["dpo"].update(kl=None, kl_note="no log-probs for this model")
    document["policies"]["ppo"]["kl_note"] = "top_p < 1: the estimate is biased"
    del document["reward_models"]["rm"]["ceiling"]
    path.write_text(json.dumps(document))
    found = sections(write_report(root).read_text(encoding="utf-8"))
    assert "not in this run: KL of dpo (no log-probs for this model)" in found["kl"]
    assert "<td>dpo</td>" not in found["kl"]
    assert "<p>KL of ppo: top_p &lt; 1: the estimate is biased</p>" in found["kl"]
    assert len(IMAGE.findall(found["kl"])) == 2
    assert "<td>rm</td><td>400</td><td>0.712 [0.671, 0.754]</td><td>—</td>" \
        in found["reward-model"]


def test_a_judge_other_than_gold_gets_its_own_column_beside_gold(tmp_path):
    root = fixtures.build_pipeline(tmp_path / "demo")
    path = root / "eval" / "evaluation.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**document, "judge": "rm:runs/rm"}), encoding="utf-8")
    summary = sections(write_report(root).read_text(encoding="utf-8"))["summary"]
    assert ("<th>policy</th><th>judge score</th><th>gold total</th><th>win rate over sft</th>"
            "<th>KL</th>") in summary
