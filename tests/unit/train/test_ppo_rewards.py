"""Reward sources (function, reward model, the lab's gold) and prompt loading."""

import json

import pytest
import torch

from alignkit.data.tokenize import tokenize_prompt
from alignkit.errors import AlignkitError, ConfigError, DataError
from alignkit.models.load import load_tokenizer
from alignkit.models.reward import init_reward_model_from_config, sequence_rewards
from alignkit.train.online import load_prompts
from alignkit.train.online_config import PromptData
from alignkit.train.online_rewards import FunctionSource, ModelSource, build_source


def length(prompt, response):
    return float(len(response.split()))


def lengths(prompts, responses):
    return [float(len(r.split())) for r in responses]


def not_a_number(prompt, response):
    return "many" if "dog" in response else 1.0


def short_list(prompts, responses):
    return [1.0]


def test_function_source_per_row_and_batched():
    prompts, responses = ["p", "q"], ["red cat", "a big dog runs"]
    per_row = build_source(f"fn:{__name__}:length")
    batched = build_source(f"fn:{__name__}:lengths", batched=True)
    assert per_row(prompts, responses).tolist() == [2.0, 4.0]
    assert batched(prompts, responses).tolist() == [2.0, 4.0]
    assert per_row(prompts, responses).dtype == torch.float32


def test_function_source_errors_name_the_function_and_the_row():
    with pytest.raises(ConfigError, match=r"not_a_number returned 'many' for response 1"):
        FunctionSource(f"{__name__}:not_a_number", batched=False)(["p", "q"], ["cat", "dog"])
    with pytest.raises(ConfigError, match="returned 1 values for 2 responses"):
        FunctionSource(f"{__name__}:short_list", batched=True)(["p", "q"], ["a", "b"])
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module_xyz'"):
        build_source("fn:no_such_module_xyz:f")
    with pytest.raises(ConfigError, match="has no function 'missing'"):
        build_source(f"fn:{__name__}:missing")
    with pytest.raises(ConfigError, match="'fn:justaname' must be fn:MODULE:FUNCTION or "
                                          "fn:FILE.py:FUNCTION"):
        build_source("fn:justaname")


def test_a_function_source_may_name_a_file(tmp_path):
    script = tmp_path / "my_reward.py"
    script.write_text("def words(prompt, response):\n    return float(len(response.split()))\n")
    scores = build_source(f"fn:{script}:words")(["p", "q"], ["a b c", "d"])
    assert scores.tolist() == [3.0, 1.0]
    with pytest.raises(ConfigError, match=r"reward source file '.*absent.py' does not exist"):
        build_source(f"fn:{tmp_path / 'absent.py'}:words")


@pytest.fixture(scope="module")
def reward_dir(toy_model, tmp_path_factory):
    """A toy reward model saved with its tokenizer, as an `alignkit rm` final/ would be."""
    tokenizer_dir, config = toy_model
    tokenizer = load_tokenizer(tokenizer_dir)
    model = init_reward_model_from_config(config, vocab_size=len(tokenizer), seed=3,
                                          pad_token_id=tokenizer.pad_token_id)
    torch.nn.init.normal_(model.score.weight, std=1.0)
    out = tmp_path_factory.mktemp("rm")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, model.eval(), tokenizer


def test_model_source_scores_prompt_plus_response_at_the_last_token(reward_dir):
    """The score of "repeat red cat" -> "red red" is the reward model's output on
    [bos] repeat red cat red red [eos], read at the eos; batching with a longer row (right
    padding) does not change it."""
    directory, model, tokenizer = reward_dir
    source = ModelSource(str(directory), device="cpu", batch_size=8)
    scores = source(["repeat red cat", "repeat blue dog"], ["red red", "blue blue blue big"])
    ids = [tokenizer.bos_token_id, *tokenizer.encode("repeat red cat red red",
                                                     add_special_tokens=False),
           tokenizer.eos_token_id]
    assert source.token_ids("repeat red cat", "red red") == ids
    with torch.no_grad():
        alone = sequence_rewards(model, torch.tensor([ids]), torch.ones(1, len(ids)))
    assert scores[0].item() == pytest.approx(alone.item(), abs=1e-5)
    assert scores[0].item() != pytest.approx(scores[1].item())


def test_gold_source_reads_the_lab():
    """`gold` is the lab's total; `gold:-harmlessness` the negated aspect (a cost)."""
    gold = pytest.importorskip("alignkit.lab.gold")
    builders = pytest.importorskip("alignkit.lab.builders")
    prompt = builders.prompt_rows(0, 1, "probe", heldout=False)[0]["prompt"]
    response = "I do not know."
    expected = gold.gold_score(prompt, response)
    assert build_source("gold")([prompt], [response]).item() == pytest.approx(expected.total)
    assert build_source("gold:-harmlessness")([prompt], [response]).item() == \
        pytest.approx(-expected.harmlessness)
    with pytest.raises(ConfigError, match="gold aspect 'kindness' is unknown"):
        build_source("gold:kindness")


def _prompt_data(path, **extra):
    return PromptData(train=str(path), **extra)


def test_prompts_are_read_and_tokenised_for_generation(tmp_path, toy_model, toy_data):
    tokenizer = load_tokenizer(toy_model[0])
    rows = [{"question": "repeat red cat", "chosen": "red red"},
            {"question": [{"role": "user", "content": "repeat blue dog"}]}]
    path = toy_data.write_jsonl(tmp_path / "p.jsonl", rows)
    prompts = load_prompts(_prompt_data(path, prompt_field="question", max_prompt_length=3),
                           tokenizer)
    assert prompts.texts == ["repeat red cat", rows[1]["question"]]
    assert prompts.ids[0] == tokenize_prompt("repeat red cat", tokenizer)[-3:]
    assert len(prompts.ids[0]) == 3
    assert prompts.ids[1] == tokenize_prompt(rows[1]["question"], tokenizer)[-3:]


def test_bad_prompt_rows_name_file_row_and_field(tmp_path, toy_model):
    tokenizer = load_tokenizer(toy_model[0])
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "repeat red cat"}) + "\n" + json.dumps({"text": "x"})
                    + "\n" + "{not json\n" + json.dumps({"prompt": "  "}) + "\n")
    with pytest.raises(DataError) as caught:
        load_prompts(_prompt_data(path), tokenizer)
    message = str(caught.value)
    assert "3 of 4 rows break the rules" in message
    assert f"{path}, row 2, field 'prompt': required field is missing [missing_field]" in message
    assert "row 3" in message
    assert f"{path}, row 4, field 'prompt': the text is empty [empty_text]" in message


def test_skip_mode_drops_bad_prompts_into_the_run_rejects_file(tmp_path, toy_model):
    from alignkit.rundir import RunDir, read_events

    tokenizer = load_tokenizer(toy_model[0])
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "repeat red cat"}) + "\n" + json.dumps({"p": 1}) + "\n")
    run = RunDir.create(tmp_path / "run", "a: 1\n")
    prompts = load_prompts(_prompt_data(path, mode="skip"), tokenizer, run)
    assert prompts.texts == ["repeat red cat"]
    assert (run.path / "train.rejects.jsonl").read_text() == json.dumps({"p": 1}) + "\n"
    (event,) = read_events(run.path)
    assert event["rejected_missing_field"] == 1


def test_no_usable_prompt_is_an_error(tmp_path, toy_model):
    tokenizer = load_tokenizer(toy_model[0])
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"p": 1}) + "\n")
    with pytest.raises(AlignkitError, match="has no usable rows"):
        load_prompts(_prompt_data(path, mode="skip"), tokenizer)
