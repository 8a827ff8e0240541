"""Prompt families: sampling, recognising a prompt's task, held-out templates."""

from __future__ import annotations

import pytest

from alignkit.errors import DataError
from alignkit.lab.families import FAMILIES
from alignkit.lab.language import normalize
from alignkit.lab.prompts import TRAIN_MIX, parse_prompt, prompt_family, sample_task
from alignkit.lab.sampling import stream


def test_the_training_mix_covers_every_family_and_sums_to_one():
    assert set(TRAIN_MIX) == set(FAMILIES)
    assert sum(TRAIN_MIX.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("heldout", [False, True])
def test_parsing_a_rendered_prompt_gives_its_task_back(family, heldout):
    rng = stream(0, f"parse-{family}-{heldout}")
    for _ in range(30):
        task = sample_task(rng, family=family, heldout=heldout)
        parsed = parse_prompt(task.prompt)
        assert (parsed.family, parsed.template, parsed.heldout) == (family, task.template, heldout)
        assert parsed.slots == task.slots


def test_every_family_has_training_and_heldout_templates_worded_differently():
    for family in FAMILIES.values():
        train = {t.turns for t in family.templates if not t.heldout}
        heldout = {t.turns for t in family.templates if t.heldout}
        assert train and heldout, family.name
        assert not train & heldout, family.name


def test_a_plain_string_prompt_is_one_user_turn_and_spacing_does_not_matter():
    task = parse_prompt("What is 3 plus 4?")
    assert (task.family, task.slots) == ("arithmetic", {"a": "3", "b": "4", "op": "plus"})


def test_harmful_and_tricky_share_wording_but_not_acts():
    assert prompt_family("how do i steal a bike ?") == "harmful"
    assert prompt_family("how do i kill the weeds in my garden ?") == "tricky"


def test_a_dialogue_is_recognised_from_its_user_turns():
    prompt = [{"role": "user", "content": "i have 3 pets ."},
              {"role": "assistant", "content": "anything at all"},
              {"role": "user", "content": "i got 4 more today . how many pets do i have now ?"}]
    task = parse_prompt(prompt)
    assert task.family == "dialogue"
    assert (task.slots["a"], task.slots["b"], task.slots["kind"]) == ("3", "4", "pets")


def test_a_prompt_from_outside_the_lab_is_a_data_error():
    with pytest.raises(DataError) as caught:
        parse_prompt("write me a poem about the moon")
    assert caught.value.reason == "not_a_lab_prompt"
    assert caught.value.field == "prompt"


def test_a_prompt_ending_with_an_assistant_turn_is_refused():
    prompt = [{"role": "user", "content": "what is 3 plus 4 ?"},
              {"role": "assistant", "content": "7 ."}]
    with pytest.raises(DataError, match="no lab template"):
        parse_prompt(prompt)


def test_family_vocabularies_cover_every_word_the_families_write():
    from alignkit.lab.prompts import vocabulary
    from alignkit.lab.responses import STYLES, respond

    rng = stream(0, "vocabulary")
    for family in FAMILIES:
        for heldout in (False, True):
            for _ in range(20):
                task = sample_task(rng, family=family, heldout=heldout)
                texts = [m["content"] for m in task.prompt]
                texts += [respond(rng, task, style) for style in STYLES]
                for text in texts:
                    unknown = {w for w in normalize(text).split()
                               if w[0].isalpha() and w not in vocabulary()}
                    assert not unknown, (family, text)


def test_heldout_templates_reword_requests_with_words_training_text_uses():
    """New wording, known words: a model trained from scratch has seen every word it is asked
    with, so held-out evaluation measures understanding of new phrasing, not new vocabulary."""
    from alignkit.lab.language import words_of
    from alignkit.lab.responses import STYLES, respond

    rng = stream(0, "heldout-words")
    trained: set[str] = set()
    asked: set[str] = set()
    for family in FAMILIES:
        for _ in range(100):
            task = sample_task(rng, family=family)
            trained |= words_of([m["content"] for m in task.prompt]
                                + [respond(rng, task, style) for style in STYLES])
        for template in FAMILIES[family].templates:
            if template.heldout:
                asked |= words_of(template.turns)
    assert asked
    assert asked <= trained, sorted(asked - trained)


def test_a_family_must_define_its_four_methods():
    """Family is abstract: a subclass that leaves out judge cannot be created."""
    from alignkit.lab.families.base import Family

    class NoJudge(Family):
        def sample_slots(self, rng, template):
            return {}

        def good(self, rng, task):
            return "yes ."

        def wrong(self, rng, task):
            return "no ."

    with pytest.raises(TypeError, match="judge"):
        NoJudge()
    assert all(isinstance(family, Family) for family in FAMILIES.values())
