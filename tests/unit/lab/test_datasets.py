"""The generated lab: determinism, formats, sizes, held-out prompts, labels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from alignkit.data.validate import load_examples
from alignkit.errors import ConfigError, DataError
from alignkit.lab import builders
from alignkit.lab.annotators import PANEL
from alignkit.lab.datasets import SIZES, LabPaths, generate_lab, read_prompts
from alignkit.lab.families import FAMILIES
from alignkit.lab.gold import gold_score
from alignkit.lab.language import normalize
from alignkit.lab.prompts import parse_prompt

SMALL = SIZES["small"]
NAMES = [a.name for a in PANEL]
EXAMPLE_FILES = {"sft": "sft", "pairs": "pairs", "harm_pairs": "pairs", "kto": "unpaired",
                 "ranked": "ranked", "gold_pairs_eval": "pairs"}
PROMPT_FILES = ("rl_prompts", "eval_prompts", "harmful_eval", "harmless_tricky_eval")


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> LabPaths:
    return generate_lab(tmp_path_factory.mktemp("lab") / "lab", seed=0, size="small")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_gives_the_same_bytes(lab, tmp_path):
    again = generate_lab(tmp_path / "again", seed=0, size="small")
    assert _files(again.root) == _files(lab.root)


def test_another_seed_gives_other_data(lab, tmp_path):
    other = generate_lab(tmp_path / "other", seed=1, size="small")
    assert other.sft.read_bytes() != lab.sft.read_bytes()
    # The word tokenizer is the language's, not the seed's.
    assert (other.model / "tokenizer.json").read_bytes() == \
        (lab.model / "tokenizer.json").read_bytes()


def test_a_smaller_size_is_a_prefix_of_a_larger_one():
    assert builders.sft_examples(0, 20) == builders.sft_examples(0, 50)[:20]


@pytest.mark.parametrize(("name", "kind"), sorted(EXAMPLE_FILES.items()))
def test_every_dataset_loads_strictly_with_its_stated_size(lab, name, kind):
    result = load_examples(getattr(lab, name), mode="strict")
    assert result.kind == kind
    assert len(result.examples) == getattr(SMALL, name)
    assert all(e.meta.category in FAMILIES for e in result.examples)


@pytest.mark.parametrize("name", PROMPT_FILES)
def test_prompt_files_read_back_with_their_stated_size(lab, name):
    rows = read_prompts(getattr(lab, name))
    assert len(rows) == getattr(SMALL, name)
    assert all(parse_prompt(r.prompt).family == r.category for r in rows)


def test_evaluation_files_hold_only_heldout_templates_and_the_right_families(lab):
    eval_rows = read_prompts(lab.eval_prompts)
    assert Counter(r.category for r in eval_rows) == {f: 6 for f in FAMILIES}  # 66 / 11
    assert {r.category for r in read_prompts(lab.harmful_eval)} == {"harmful"}
    assert {r.category for r in read_prompts(lab.harmless_tricky_eval)} == {"tricky"}
    for name in ("eval_prompts", "harmful_eval", "harmless_tricky_eval"):
        assert all(parse_prompt(r.prompt).heldout for r in read_prompts(getattr(lab, name)))


def _training_prompts(lab: LabPaths) -> list:
    prompts = [e.prompt for name in ("sft", "pairs", "harm_pairs", "kto", "ranked")
               for e in load_examples(getattr(lab, name)).examples]
    return prompts + [r.prompt for r in read_prompts(lab.rl_prompts)]


def test_heldout_templates_never_appear_in_training_files(lab):
    training = _training_prompts(lab)
    assert not any(parse_prompt(p).heldout for p in training)
    seen = {normalize(m["content"]) for p in training for m in p}
    heldout = {normalize(m["content"]) for name in ("eval_prompts", "harmful_eval",
                                                    "harmless_tricky_eval")
               for r in read_prompts(getattr(lab, name)) for m in r.prompt
               if m["role"] == "user"}
    # A dialogue's final question is what is held out; no held-out user turn was trained on.
    assert not seen & heldout


def test_sft_demonstrations_are_often_but_not_always_good(lab):
    """SFT_MIX asks for 45% good answers; with the polite refusals of harmful requests
    about 46% score gold 2.5, and 240 rows give 0.46 +- 0.03 (seeds 0-3: 0.46, 0.44,
    0.50, 0.43)."""
    examples = load_examples(lab.sft).examples
    totals = [gold_score(e.prompt, e.completion).total for e in examples]
    good = sum(t == pytest.approx(2.5) for t in totals) / len(totals)
    assert 0.38 <= good <= 0.55
    assert min(totals) < 0  # some demonstrations help with harm


def test_pair_labels_hold_every_vote_and_the_majority_chose(lab):
    pairs = load_examples(lab.pairs).examples
    table = [json.loads(line) for line in lab.annotations.read_text().splitlines()]
    assert [row["id"] for row in table] == [p.meta.id for p in pairs]
    for pair, row in zip(pairs, table, strict=True):
        assert set(pair.meta.labels) == set(NAMES)
        chosen_votes = sum(v == "chosen" for v in pair.meta.labels.values())
        assert chosen_votes >= 3
        # The table's majority letter has exactly the chosen response's votes.
        assert max(Counter(row[n] for n in NAMES).values()) == chosen_votes


def test_gold_pairs_are_ordered_by_gold_with_the_margin(lab):
    for pair in load_examples(lab.gold_pairs_eval).examples:
        gap = (gold_score(pair.prompt, pair.chosen).total
               - gold_score(pair.prompt, pair.rejected).total)
        assert gap == pytest.approx(pair.meta.margin, abs=1e-6)
        assert gap >= builders.GOLD_TIE


def test_harm_pairs_mostly_choose_the_more_harmful_response(lab):
    """Every pair differs in gold harmlessness; the panel's majority picks the more harmful
    one in at least 90% of the 80 small-lab pairs (each annotator is right with P >= 0.73)."""
    pairs = load_examples(lab.harm_pairs).examples
    harm = [(gold_score(p.prompt, p.chosen).harmlessness,
             gold_score(p.prompt, p.rejected).harmlessness) for p in pairs]
    assert all(c != r for c, r in harm)
    assert sum(c < r for c, r in harm) / len(harm) >= 0.9
    assert all(sum(v == "chosen" for v in p.meta.labels.values()) >= 3 for p in pairs)


def test_kto_labels_are_the_panel_majority(lab):
    examples = load_examples(lab.kto).examples
    assert all(e.label == (sum(e.meta.labels.values()) >= 3) for e in examples)
    desirable = sum(e.label for e in examples) / len(examples)
    assert 0.4 <= desirable <= 0.8


def test_ranked_scores_share_out_every_comparison(lab):
    for ranked in load_examples(lab.ranked).examples:
        k = len(ranked.completions)
        assert k >= 3
        assert sum(ranked.scores) == pytest.approx(k * (k - 1) / 2)


def test_manifest_lists_rows_and_files(lab):
    manifest = json.loads(lab.manifest.read_text())
    assert manifest["seed"] == 0 and manifest["size"] == "small"
    assert manifest["rows"]["sft"] == SMALL.sft
    assert all((lab.root / path).exists() for path in manifest["files"].values())


def test_unknown_size_or_tokenizer_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="size"):
        generate_lab(tmp_path, size="huge")
    with pytest.raises(ConfigError, match="tokenizer"):
        generate_lab(tmp_path, size="small", tokenizer="chars")


def test_read_prompts_names_the_bad_row(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "what is 3 plus 4 ?"}\n{"id": "x"}\n')
    with pytest.raises(DataError) as caught:
        read_prompts(path)
    assert (caught.value.row, caught.value.field, caught.value.reason) == \
        (2, "prompt", "missing_field")
