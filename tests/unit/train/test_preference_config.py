"""The dpo configuration: per-loss options, the data kind each loss trains on, reference modes."""

from pathlib import Path

import pytest

from alignkit.config import load_config
from alignkit.errors import ConfigError
from alignkit.train.dpo_config import DPOConfig, data_kind, reference_mode

REQUIRED = ["model.init_from_config=config.json", "model.tokenizer=tok", "data.train=d.jsonl"]


def _cfg(*overrides):
    return load_config(DPOConfig, None, [*REQUIRED, *overrides])


def test_default_is_dpo_with_beta_and_each_loss_takes_its_own_options():
    assert _cfg().loss.model_dump() == {"type": "dpo", "beta": 0.1, "sft_weight": 0.0}
    ipo = _cfg("loss.type=ipo", "loss.tau=0.5").loss.model_dump()
    assert ipo == {"type": "ipo", "tau": 0.5, "sft_weight": 0.0}
    kto = _cfg("loss.type=kto", "loss.desirable_weight=1.5").loss
    assert kto.model_dump() == {"type": "kto", "beta": 0.1, "desirable_weight": 1.5,
                                "undesirable_weight": 1.0}


def test_an_option_the_loss_does_not_take_is_named():
    with pytest.raises(ConfigError) as caught:
        _cfg("loss.type=ipo", "loss.beta=0.1")
    message = str(caught.value)
    assert "loss.beta = 0.1" in message
    assert "'beta' is not an option of loss type 'ipo'" in message
    assert "takes: type, sft_weight, tau" in message


def test_out_of_range_and_unknown_losses_are_refused():
    with pytest.raises(ConfigError, match=r"loss.label_smoothing = 0.5 .*must be < 0.5"):
        _cfg("loss.type=robust", "loss.label_smoothing=0.5")
    with pytest.raises(ConfigError, match="unknown loss type; allowed: 'dpo', 'cdpo'"):
        _cfg("loss.type=dpoo")


@pytest.mark.parametrize(("loss", "kind"), [("dpo", "pairs"), ("simpo", "pairs"),
                                            ("orpo", "pairs"), ("rrhf", "ranked"),
                                            ("kto", "unpaired")])
def test_data_kind_follows_the_loss(loss, kind):
    assert data_kind(loss) == kind


@pytest.mark.parametrize(("overrides", "mode"), [
    ((), "precomputed"),
    (("peft.enabled=true",), "adapter"),
    (("peft.enabled=true", "reference.mode=copy"), "copy"),
    (("reference.mode=copy",), "copy"),
    (("loss.type=kto",), "precomputed"),
    (("loss.type=simpo",), "none"),
    (("loss.type=orpo", "peft.enabled=true"), "none"),
    (("loss.type=rrhf", "reference.mode=none"), "none"),
])
def test_auto_picks_the_reference_by_loss_and_lora(overrides, mode):
    assert reference_mode(_cfg(*overrides)) == mode


@pytest.mark.parametrize(("overrides", "message"), [
    (("loss.type=simpo", "reference.mode=copy"), "loss.type 'simpo' uses no reference"),
    (("loss.type=rrhf", "reference.mode=precomputed"), "loss.type 'rrhf' uses no reference"),
    (("reference.mode=none",), "loss.type 'dpo' needs a reference policy"),
    (("loss.type=kto", "reference.mode=none"), "loss.type 'kto' needs a reference policy"),
    (("reference.mode=adapter",), "needs LoRA"),
])
def test_contradictory_reference_modes_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        reference_mode(_cfg(*overrides))


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize(("name", "loss", "mode"), [
    ("dpo.yaml", "dpo", "precomputed"), ("dpo-ipo.yaml", "ipo", "precomputed"),
    ("dpo-simpo.yaml", "simpo", "none"), ("dpo-orpo.yaml", "orpo", "none"),
    ("dpo-rrhf.yaml", "rrhf", "none"), ("dpo-kto.yaml", "kto", "precomputed")])
def test_the_examples_are_valid_configurations(name, loss, mode):
    cfg = load_config(DPOConfig, EXAMPLES / name)
    assert (cfg.loss.type, reference_mode(cfg)) == (loss, mode)
