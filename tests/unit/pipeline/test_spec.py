"""Reading a pipeline file: references, overrides, kinds, and validation before anything runs."""

from __future__ import annotations

import pytest

from alignkit.errors import ConfigError
from alignkit.pipeline.spec import load_pipeline
from alignkit.pipeline.state import fingerprints


def test_references_become_stage_directories_and_the_seed(fake_kinds, write_pipeline, tmp_path):
    path = write_pipeline({
        "a": {"kind": "note", "value": "${seed}"},
        "b": {"kind": "note", "source": "${a}/sub-${seed}"},
        "c": {"kind": "train-note", "source": "${ b }"},
    }, seed=7)
    pipeline = load_pipeline(path)
    a, b, c = pipeline.stages
    out = (tmp_path / "out").as_posix()
    assert a.config.value == 7  # the whole value: a number, as the schema wants
    assert b.config.source == f"{out}/a/sub-7"  # inside text: text
    assert c.config.source == f"{out}/b"
    assert c.config.output_dir == f"{out}/c"
    assert [s.uses for s in pipeline.stages] == [(), ("a",), ("b",)]
    assert pipeline.dependents("a") == ["b", "c"]


def test_kind_may_be_left_out_when_the_name_is_a_kind(fake_kinds, write_pipeline):
    pipeline = load_pipeline(write_pipeline({"note": {"value": 2}}))
    assert pipeline.stages[0].kind is fake_kinds.note


@pytest.mark.parametrize(("source", "expected"), [
    ("${later}/x", "source = '${later}/x' (PATH:8): ${later} refers to stage 'later', "
                   "which runs later; a stage can use only the stages above it"),
    ("${b}", "${b} refers to the stage itself"),
    ("${aa}/x", "${aa} names no earlier stage (did you mean 'a'?); earlier stages: a "
                "(and ${seed})"),
])
def test_a_bad_reference_names_file_stage_and_key(fake_kinds, write_pipeline, source, expected):
    path = write_pipeline({"a": {"kind": "note"}, "b": {"kind": "note", "source": source},
                           "later": {"kind": "note"}})
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    message = str(caught.value)
    assert message.startswith(f"pipeline {path}:\n- stage 'b': source = ")
    assert expected.replace("PATH", str(path)) in message


def test_overrides_apply_to_the_whole_file(fake_kinds, write_pipeline, tmp_path):
    path = write_pipeline({"a": {"kind": "note", "value": "${seed}"},
                           "b": {"kind": "note", "value": 1}})
    pipeline = load_pipeline(path, ["seed=3", "stages.b.value=9", "stages.b.source=${a}"],
                             output_dir=tmp_path / "elsewhere")
    a, b = pipeline.stages
    assert (pipeline.seed, a.config.value, b.config.value) == (3, 3, 9)
    assert b.config.source == (tmp_path / "elsewhere" / "a").as_posix()
    assert b.uses == ("a",)


def test_every_stage_is_validated_and_every_problem_reported_at_once(fake_kinds, write_pipeline):
    path = write_pipeline({
        "a": {"kind": "note", "value": 1},
        "b": {"kind": "train-note", "valeu": 2},
        "c": {"kind": "note", "value": "high"},
    })
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    message = str(caught.value)
    assert f"pipeline {path} (2 stages with problems):" in message
    assert f"- stage 'b': invalid configuration:\n    - valeu = 2 ({path}:9): unknown key " \
           "(did you mean 'value'?)" in message
    assert f"- stage 'c': invalid configuration:\n    - value = 'high' ({path}:12): " \
           "expected int" in message


def test_an_override_typo_names_the_override(fake_kinds, write_pipeline):
    path = write_pipeline({"a": {"kind": "note"}})
    with pytest.raises(ConfigError, match=r"stage 'a': invalid configuration:\n    - vlaue = 3 "
                                          r"\(override stages.a.vlaue=3\): unknown key"):
        load_pipeline(path, ["stages.a.vlaue=3"])


def test_unknown_and_missing_kinds_list_the_kinds(fake_kinds, write_pipeline):
    path = write_pipeline({"a": {"kind": "ntoe"}, "b": {"value": 1}})
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    message = str(caught.value)
    assert "- stage 'a': kind = 'ntoe': unknown kind (did you mean 'note'?); kinds: lab-data, " \
           "sft, rm, dpo, ppo, rloo, grpo, eval, note, train-note" in message
    assert "- stage 'b': kind is required (the name 'b' is not a kind); one of lab-data" in message


def test_a_training_stage_may_not_choose_its_output_dir(fake_kinds, write_pipeline, tmp_path):
    path = write_pipeline({"b": {"kind": "train-note", "output_dir": "mine"}})
    with pytest.raises(ConfigError, match=r"stage 'b': output_dir = 'mine': the pipeline sets "
                                          r"it \(.*/out/b\); remove it"):
        load_pipeline(path)


@pytest.mark.parametrize(("name", "problem"), [
    ("Big", "'Big' is not a stage name"),
    ("-a", "'-a' is not a stage name"),
    ("seed", "'seed' cannot name a stage"),
])
def test_stage_names_are_checked(fake_kinds, write_pipeline, name, problem):
    with pytest.raises(ConfigError, match=problem):
        load_pipeline(write_pipeline({name: {"kind": "note"}}))


def test_top_level_keys_are_checked(fake_kinds, write_pipeline):
    path = write_pipeline({"a": {"kind": "note"}}, seeds=1)
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert str(caught.value) == (
        f"pipeline {path}: invalid configuration:\n  - seeds = 1 ({path}:3): unknown key (did "
        "you mean 'seed'?); the top level takes: output_dir, seed, stages")


def test_output_dir_defaults_to_runs_and_the_file_name(fake_kinds, tmp_path):
    path = tmp_path / "my-pipe.yaml"
    path.write_text("stages:\n  a: {kind: note}\n")
    assert load_pipeline(path).output_dir.as_posix() == "runs/my-pipe"


def test_fingerprints_ignore_key_order_and_defaults_written_out(fake_kinds, write_pipeline):
    first = write_pipeline({"a": {"kind": "note", "value": 1, "source": "x"},
                            "b": {"kind": "note", "source": "${a}"}}, name="one.yaml")
    second = write_pipeline({"a": {"source": "x", "kind": "note", "value": 1},
                             "b": {"value": 0, "source": "${a}", "kind": "note"}},
                            name="two.yaml")
    assert fingerprints(load_pipeline(first)) == fingerprints(load_pipeline(second))


def test_a_change_moves_the_fingerprints_of_its_stage_and_downstream_only(fake_kinds,
                                                                          write_pipeline, chain):
    before = fingerprints(load_pipeline(write_pipeline(chain)))
    after = fingerprints(load_pipeline(write_pipeline(chain), ["stages.b.value=5"]))
    assert [name for name in before if before[name] != after[name]] == ["b", "c"]
    assert len(set(before.values())) == 4


def test_an_unquoted_reference_in_flow_style_gets_a_hint(fake_kinds, tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("stages:\n  a: {kind: note}\n  b: {kind: note, source: ${a}/x}\n")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert str(caught.value) == (
        f"{path} line 3, column 28: invalid YAML: expected ',' or '}}', but got '{{'; inside "
        "{...} or [...] a value holding ${...} must be quoted, e.g. {path: \"${sft}\"}, or "
        "written in block style")
    path.write_text('stages:\n  a: {kind: note}\n  b: {kind: note, source: "${a}/x"}\n')
    assert load_pipeline(path).stages[1].uses == ("a",)
