"""Running a pipeline: skip what is done, rerun what changed, resume what was interrupted."""

from __future__ import annotations

import json

import pytest

from alignkit.errors import AlignkitError, ConfigError
from alignkit.pipeline.runner import StageFailed, run_pipeline
from alignkit.pipeline.spec import load_pipeline


def _run(path, *overrides, **options):
    lines: list[str] = []
    result = run_pipeline(load_pipeline(path, overrides), echo=lines.append, **options)
    return result, lines


def _calls(fake_kinds):
    """Every stage call so far, in order, as ``name`` or ``name (resume)``; then forget them."""
    calls = sorted([*fake_kinds.note.calls, *fake_kinds.train.calls], key=lambda c: c[0])
    fake_kinds.note.calls.clear()
    fake_kinds.train.calls.clear()
    return [name + (" (resume)" if resume else "") for name, resume in calls]


def _state(tmp_path):
    rows = json.loads((tmp_path / "out" / "pipeline.json").read_text())["stages"]
    return {row["name"]: row["status"] for row in rows}


def test_a_first_run_runs_every_stage_and_a_second_skips_them(fake_kinds, fake_report,
                                                              write_pipeline, chain, tmp_path):
    path = write_pipeline(chain)
    result, lines = _run(path)
    out = tmp_path / "out"
    assert _calls(fake_kinds) == ["a", "b", "c", "d"]
    # c read b's note, which read a's: the references led to the right directories.
    assert (out / "c" / "note.txt").read_text() == "321"
    assert [o.status for o in result.outcomes] == ["ran"] * 4
    assert _state(tmp_path) == dict.fromkeys("abcd", "done")
    assert "stages:\n  a:\n    kind: note\n    value: 1\n    source: null\n" in \
        (out / "pipeline.yaml").read_text()
    assert lines[0] == "[1/4] a (note): running (not run before)"
    assert lines[1].startswith("[1/4] a (note): done in ")
    assert result.report == out / "report.html" and fake_report.calls == [out]

    result, lines = _run(path)
    assert _calls(fake_kinds) == []
    assert lines == [f"[{i}/4] {n} ({k}): skipped, done earlier with the same config"
                     for i, (n, k) in enumerate(zip("abcd", ["note", "train-note", "note",
                                                               "note"], strict=True), 1)]
    assert [o.status for o in result.outcomes] == ["skipped"] * 4


def test_a_changed_stage_reruns_with_its_dependents_only(fake_kinds, fake_report, write_pipeline,
                                                         chain, tmp_path):
    path = write_pipeline(chain)
    _run(path)
    _calls(fake_kinds)
    result, lines = _run(path, "stages.b.value=5")
    assert _calls(fake_kinds) == ["b", "c"]
    assert (tmp_path / "out" / "c" / "note.txt").read_text() == "351"
    assert lines[1] == "[2/4] b (train-note): running (its configuration changed since it ran)"
    assert lines[3] == "[3/4] c (note): running (it uses b, which runs now)"
    assert [o.status for o in result.outcomes] == ["skipped", "ran", "ran", "skipped"]


def test_an_interrupted_stage_resumes_and_the_finished_ones_are_skipped(fake_kinds, fake_report,
                                                                        write_pipeline, chain,
                                                                        tmp_path):
    path = write_pipeline(chain)
    fake_kinds.train.interrupt.add("b")  # after its checkpoint, before its final note
    with pytest.raises(KeyboardInterrupt):
        _run(path)
    assert _calls(fake_kinds) == ["a", "b"]
    assert _state(tmp_path) == {"a": "done", "b": "failed"}
    assert fake_report.calls == []

    result, lines = _run(path)
    assert _calls(fake_kinds) == ["b (resume)", "c", "d"]
    assert lines[1] == "[2/4] b (train-note): resuming (failed earlier; continuing from its " \
                       "last checkpoint)"
    assert [o.status for o in result.outcomes] == ["skipped", "resumed", "ran", "ran"]
    assert _state(tmp_path) == dict.fromkeys("abcd", "done")


def test_a_stage_killed_before_its_first_checkpoint_starts_again(fake_kinds, fake_report,
                                                                 write_pipeline, chain, tmp_path):
    path = write_pipeline(chain)
    _run(path)
    _calls(fake_kinds)
    # What a SIGKILL leaves: the stage marked running, and no checkpoint yet.
    state_file = tmp_path / "out" / "pipeline.json"
    state = json.loads(state_file.read_text())
    state["stages"][1]["status"] = "running"
    state_file.write_text(json.dumps(state))
    (tmp_path / "out" / "b" / "checkpoint").unlink()
    stale = tmp_path / "out" / "b" / "stale.txt"
    stale.write_text("from the killed run")

    _, lines = _run(path)
    assert _calls(fake_kinds) == ["b", "c"]
    assert lines[1] == "[2/4] b (train-note): running (interrupted earlier, before its first " \
                       "checkpoint)"
    assert not stale.exists()  # a fresh run starts from an empty directory


def test_rerun_forces_a_stage_and_everything_downstream(fake_kinds, fake_report, write_pipeline,
                                                        chain):
    path = write_pipeline(chain)
    _run(path)
    _calls(fake_kinds)
    _, lines = _run(path, rerun=["b"])
    assert _calls(fake_kinds) == ["b", "c"]
    assert lines[1] == "[2/4] b (train-note): running (asked for with --rerun)"
    _run(path, rerun=["a"])
    assert _calls(fake_kinds) == ["a", "b", "c", "d"]


def test_a_replaced_output_makes_its_old_dependents_stale(fake_kinds, fake_report, write_pipeline,
                                                          chain):
    """--rerun a, interrupted in b: c and d were built from the old a, so they run next time."""
    path = write_pipeline(chain)
    _run(path)
    _calls(fake_kinds)
    fake_kinds.train.interrupt.add("b")
    with pytest.raises(KeyboardInterrupt):
        _run(path, rerun=["a"])
    assert _calls(fake_kinds) == ["a", "b"]
    _run(path)
    assert _calls(fake_kinds) == ["b (resume)", "c", "d"]


def test_until_stops_after_the_named_stage(fake_kinds, fake_report, write_pipeline, chain,
                                           tmp_path):
    result, _ = _run(write_pipeline(chain), until="b")
    assert _calls(fake_kinds) == ["a", "b"]
    assert [(o.status, o.seconds) for o in result.outcomes[2:]] == [("not reached", None)] * 2
    assert not (tmp_path / "out" / "c").exists()


def test_dry_run_plans_and_writes_nothing(fake_kinds, fake_report, write_pipeline, chain, tmp_path):
    path = write_pipeline(chain)
    result, lines = _run(path, dry_run=True)
    assert _calls(fake_kinds) == [] and lines == [] and fake_report.calls == []
    assert not (tmp_path / "out").exists()
    assert [(d.stage.name, d.action) for d in result.decisions] == [
        ("a", "run"), ("b", "run"), ("c", "run"), ("d", "run")]

    _run(path)
    _calls(fake_kinds)
    result, _ = _run(path, "stages.c.value=8", dry_run=True, until="c")
    assert [(d.stage.name, d.action, d.reason) for d in result.decisions] == [
        ("a", "skip", "done earlier with the same config"),
        ("b", "skip", "done earlier with the same config"),
        ("c", "run", "its configuration changed since it ran")]
    assert _calls(fake_kinds) == []


def test_a_done_stage_whose_output_is_gone_runs_again(fake_kinds, fake_report, write_pipeline,
                                                      chain, tmp_path):
    path = write_pipeline(chain)
    _run(path)
    _calls(fake_kinds)
    (tmp_path / "out" / "d" / "note.txt").unlink()
    _, lines = _run(path)
    assert _calls(fake_kinds) == ["d"]
    assert lines[-2].startswith("[4/4] d (note): running (done earlier, but its output in ")


def test_a_user_error_in_a_stage_names_the_stage(fake_kinds, fake_report, write_pipeline, chain,
                                                 tmp_path):
    fake_kinds.note.fail.add("c")
    with pytest.raises(StageFailed) as caught:
        _run(write_pipeline(chain))
    assert str(caught.value) == ("stage 'c' (note) failed: x.jsonl, row 3: a fake data problem "
                                 "[bad_row]")
    assert caught.value.exit_code == 2
    assert _state(tmp_path) == {"a": "done", "b": "done", "c": "failed"}


def test_unknown_stage_names_in_options_are_refused(fake_kinds, fake_report, write_pipeline, chain):
    path = write_pipeline(chain)
    with pytest.raises(ConfigError, match=r"--rerun bb: no such stage in .*pipe.yaml \(did you "
                                          r"mean 'b'\?\); stages: a, b, c, d"):
        _run(path, rerun=["bb"])
    with pytest.raises(ConfigError, match="--until e: no such stage"):
        _run(path, until="e")


def test_a_directory_that_is_not_a_pipeline_is_never_touched(fake_kinds, fake_report,
                                                             write_pipeline, chain, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(AlignkitError, match="is not empty and holds no pipeline.json"):
        _run(write_pipeline(chain))
    assert _calls(fake_kinds) == []


def test_a_failing_report_keeps_the_pipeline_result(fake_kinds, fake_report, write_pipeline, chain):
    fake_report.error = ValueError("no plots today")
    result, lines = _run(write_pipeline(chain))
    assert result.report is None
    assert lines[-1] == "report not written: ValueError: no plots today"
    assert [o.status for o in result.outcomes] == ["ran"] * 4
