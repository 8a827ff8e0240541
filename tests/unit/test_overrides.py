"""YAML reading and KEY=VALUE overrides: types, origins, precedence and every error message."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alignkit.errors import ConfigError
from alignkit.overrides import (
    apply_overrides,
    dump_yaml,
    flow_yaml,
    format_value,
    parse_override,
    parse_yaml,
    read_yaml_file,
)


def load(text: str):
    return parse_yaml(text, "c.yaml")[0]


@pytest.mark.parametrize(("text", "expected"), [
    ("1e-5", 1e-05), ("3E4", 30000.0), ("-2e+3", -2000.0), (".5e1", 5.0), ("2.e1", 20.0),
    ("1.0e-5", 1e-05), ("0.1", 0.1), ("1_000", 1000), ("-7", -7),
])
def test_numbers_including_yaml11_exponent_forms(text, expected):
    """YAML 1.1 reads ``1e-5`` as text (it wants ``1.0e-5``); the config loader reads a float."""
    value = load(f"x: {text}")["x"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("False", False), ("TRUE", True),
    ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"),
    ("2024-01-01", "2024-01-01"), ("'1e-5'", "1e-5"), ("null", None), ("~", None),
])
def test_only_true_and_false_are_booleans_and_dates_stay_text(text, expected):
    assert load(f"x: {text}")["x"] == expected
    assert type(load(f"x: {text}")["x"]) is type(expected)


def test_origins_record_the_line_of_every_nested_key():
    data, origins = parse_yaml("seed: 1\noptim:\n  lr: 1e-5\n  betas: [0.9, 0.99]\n", "c.yaml")
    assert data == {"seed": 1, "optim": {"lr": 1e-05, "betas": [0.9, 0.99]}}
    assert origins == {"seed": "c.yaml:1", "optim": "c.yaml:2", "optim.lr": "c.yaml:3",
                       "optim.betas": "c.yaml:4"}


def test_syntax_error_names_line_and_column():
    """``b`` is indented under the scalar ``1``; its ``:`` is line 2, column 4 ("  b:")."""
    with pytest.raises(ConfigError) as err:
        parse_yaml("a: 1\n  b: 2\n", "c.yaml")
    assert str(err.value) == ("c.yaml line 2, column 4: invalid YAML: "
                              "mapping values are not allowed here")


def test_a_key_written_twice_is_an_error_with_both_lines():
    with pytest.raises(ConfigError) as err:
        parse_yaml("optim:\n  lr: 1\n  lr: 2\n", "c.yaml")
    assert str(err.value) == "c.yaml line 3: key 'optim.lr' is given twice (first on line 2)"


def test_a_key_that_is_not_text_is_an_error():
    with pytest.raises(ConfigError) as err:
        parse_yaml("optim:\n  1: a\n", "c.yaml")
    assert str(err.value) == "c.yaml line 2: key '1' is not a name; keys must be text"


def test_several_documents_are_refused():
    with pytest.raises(ConfigError) as err:
        parse_yaml("a: 1\n---\nb: 2\n", "c.yaml")
    assert "c.yaml line 2, column 1" in str(err.value)
    assert "expected a single document in the stream, but found another document" in str(
        err.value)


def test_read_file_missing_directory_list_and_empty(tmp_path):
    with pytest.raises(ConfigError, match=r"^config file not found: .*nope\.yaml$"):
        read_yaml_file(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory, not a YAML file"):
        read_yaml_file(tmp_path)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError) as err:
        read_yaml_file(listed)
    assert str(err.value) == (f"{listed}: the top level must be a mapping of keys to values "
                              "(like 'optim:'), found a list")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# only a comment\n")
    assert read_yaml_file(empty) == ({}, {})


@pytest.mark.parametrize(("text", "parts", "value"), [
    ("optim.lr=1e-5", ["optim", "lr"], 1e-05),
    ("peft.target_modules=[q_proj,v_proj]", ["peft", "target_modules"], ["q_proj", "v_proj"]),
    ("x=null", ["x"], None),
    ("x='1e-5'", ["x"], "1e-5"),
    ("x={a: 1, b: [2]}", ["x"], {"a": 1, "b": [2]}),
    ("color=#ff0000", ["color"], "#ff0000"),
    ("name=a=b", ["name"], "a=b"),
    ("flag=yes", ["flag"], "yes"),
])
def test_override_values_are_yaml(text, parts, value):
    assert parse_override(text) == (parts, value)


@pytest.mark.parametrize(("text", "message"), [
    ("optim.lr", "override 'optim.lr' has no '=': overrides are KEY=VALUE, e.g. optim.lr=1e-5"),
    ("run.yaml", "override 'run.yaml' has no '=': overrides are KEY=VALUE, e.g. optim.lr=1e-5; "
                 "to read a config file use --config run.yaml"),
    ("optim..lr=1", "override 'optim..lr=1': 'optim..lr' is not a dotted key (names separated "
                    "by single dots, e.g. optim.lr)"),
    ("=1", "override '=1': '' is not a dotted key (names separated by single dots, e.g. "
           "optim.lr)"),
    ("x=", "override 'x=' has an empty value; write x=null for no value, or \"x=''\" for "
           "empty text"),
])
def test_malformed_overrides(text, message):
    with pytest.raises(ConfigError) as err:
        parse_override(text)
    assert str(err.value) == message


def test_override_with_broken_yaml_value():
    with pytest.raises(ConfigError) as err:
        parse_override("x=[a,")
    assert str(err.value).startswith("override 'x=[a,' line 1, column 4: invalid YAML:")


def test_overrides_apply_left_to_right_and_create_sections():
    data = {"optim": {"lr": 0.1}, "peft": None}
    origins = {"optim": "c.yaml:1", "optim.lr": "c.yaml:2"}
    apply_overrides(data, ["optim.lr=0.2", "optim.lr=0.3", "peft.r=8", "a.b.c=1"], origins)
    assert data == {"optim": {"lr": 0.3}, "peft": {"r": 8}, "a": {"b": {"c": 1}}}
    assert origins["optim.lr"] == "override optim.lr=0.3"
    assert origins["optim"] == "c.yaml:1"
    assert origins["a.b.c"] == "override a.b.c=1"


def test_a_mapping_value_replaces_the_whole_section():
    """That is how a key set in the file is dropped: ``loss={type: ipo}`` loses ``beta``."""
    data = {"loss": {"type": "dpo", "beta": 0.1}}
    origins = {"loss": "c.yaml:1", "loss.type": "c.yaml:2", "loss.beta": "c.yaml:3"}
    apply_overrides(data, ["loss={type: ipo}"], origins)
    assert data == {"loss": {"type": "ipo"}}
    assert origins == {"loss": "override loss={type: ipo}",
                       "loss.type": "override loss={type: ipo}"}


def test_override_through_a_value_that_is_not_a_section():
    data = {"optim": {"lr": 0.001}}
    with pytest.raises(ConfigError) as err:
        apply_overrides(data, ["optim.lr.x=1"], {})
    assert str(err.value) == ("override 'optim.lr.x=1': 'optim.lr' is 0.001 (a number), not a "
                              "section, so it has no key 'x'")


def test_dump_quotes_text_that_would_read_back_as_another_type():
    data = {"a": "1e-5", "b": "yes", "c": 1e-05, "d": ["q", "v"], "e": {"f": None}}
    text = dump_yaml(data)
    assert text == "a: '1e-5'\nb: 'yes'\nc: 1.0e-05\nd:\n- q\n- v\ne:\n  f: null\n"
    assert load(text) == data


@pytest.mark.parametrize(("value", "shown"), [
    ("dpo", "'dpo'"), ("it's", "'it''s'"), (1e-05, "1e-05"), (0.1, "0.1"), (None, "null"),
    (True, "true"), (["q", "v"], "[q, v]"), ({"a": 1}, "{a: 1}"), (3, "3"),
])
def test_format_value_shows_what_one_would_type(value, shown):
    assert format_value(value) == shown


def test_format_value_truncates_long_values_to_the_limit():
    shown = format_value("x" * 100, limit=20)
    assert shown == "'" + "x" * 16 + "..."
    assert len(shown) == 20


tricky_text = st.one_of(
    st.sampled_from(["1e5", "1E-5", ".5e1", "yes", "No", "on", "True", "null", "~", "2024-01-01",
                     "0x1F", "1_000", "0o17", "1:30", "- a", "a: b", "#c", "", " x ", "'q'"]),
    st.text(max_size=12),
)
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_dump_then_load_gives_back_the_same_value(value):
    """What a run writes to config.yaml reads back unchanged, whatever text it holds."""
    assert load(dump_yaml({"x": value}))["x"] == value


@settings(max_examples=300, deadline=None)
@given(plain_values)
@example("\xa0").via("found by this test: str.strip() took a no-break space YAML keeps")
@example("a\u2003")
def test_a_value_shown_in_flow_style_can_be_typed_back_as_an_override(value):
    """A default as the YAML template and the --help example print it can follow ``KEY=``."""
    assert parse_override(f"x={flow_yaml(value)}")[1] == value
