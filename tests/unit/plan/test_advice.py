"""Suggestions: only changes that lower the peak, those that fit first, cheapest first."""

import pytest

from alignkit.plan.advice import candidate_changes
from alignkit.plan.architecture import describe_model
from alignkit.plan.catalogue import Device
from alignkit.plan.planner import make_plan
from alignkit.plan.settings import PlanSettings

TINY = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
            vocab_size=96)
DPO_COPY = PlanSettings("dpo", reference="copy", dtype="fp32", precision="fp32", batch_size=4,
                        seq_len=64)


@pytest.fixture(scope="module")
def shape():
    return describe_model("tiny", TINY)


def _device(memory: int) -> Device:
    return Device("test", memory, 1.0, None, 0)


def _total(shape, settings) -> int:
    return make_plan(shape, settings, _device(10**12), advise=False).total


def test_a_plan_that_fits_gets_no_suggestions(shape):
    assert make_plan(shape, DPO_COPY, _device(10**12)).suggestions == []


def test_ranking_fits_first_then_tier_then_flops(shape):
    """Memory just above the precomputed-reference plan: that change (same result, and fewer
    FLOPs: no reference pass) must come first; every listed change lowers the peak, and its
    figure is that of planning the changed settings from scratch."""
    precomputed = _total(shape, DPO_COPY.but(reference="precomputed"))
    plan = make_plan(shape, DPO_COPY, _device(precomputed + 1))
    assert not plan.fits
    first = plan.suggestions[0]
    assert first.change.startswith("reference: precomputed")
    assert (first.fits, first.tier, first.total) == (True, 0, precomputed)
    keys = [(not f.fits, f.tier) for f in plan.suggestions]
    assert keys == sorted(keys)
    for f in plan.suggestions:
        assert f.total < plan.total
        assert f.total == _total(shape, f.settings)
    fitting = [f for f in plan.suggestions if f.fits]
    assert {f.tier for f in fitting} >= {0}
    same_tier = [f.flops for f in fitting if f.tier == 0]
    assert same_tier == sorted(same_tier)
    assert [f.change.split()[0] for f in fitting if f.tier == 0][-1] == "gradient"


def test_changes_are_combined_when_none_fits_alone(shape):
    """Below every single change's figure, the first suggestion combines several."""
    plan = make_plan(shape, DPO_COPY, _device(10**12))
    best_single = min(_total(shape, c.settings) for c in candidate_changes(plan.settings))
    tight = make_plan(shape, DPO_COPY, _device(best_single - 1))
    combined = tight.suggestions[0]
    assert " + " in combined.change and combined.fits
    assert combined.total <= best_single - 1
    assert combined.total == _total(shape, combined.settings)
    assert not any(f.fits for f in tight.suggestions[1:])


def test_candidates_follow_the_settings():
    """LoRA runs are offered the adapter reference and a 4-bit base; micro-batches halve."""
    lora = PlanSettings("dpo", reference="copy", lora_rank=8, batch_size=8)
    names = [c.change for c in candidate_changes(lora)]
    assert names[0].startswith("reference: adapter")
    assert "micro-batch 4 with gradient accumulation 2" in names
    assert "micro-batch 1 with gradient accumulation 8" in names
    assert "4-bit base (QLoRA)" in names
    assert not any(n.startswith("LoRA") for n in names)
    assert "a reference-free loss (SimPO)" in names
    sft = [c.change for c in candidate_changes(PlanSettings("sft", batch_size=1, seq_len=64))]
    assert not any("micro-batch" in n or "sequences of" in n for n in sft)


def test_updates_in_backward_are_offered_only_where_they_work():
    """Full fine-tuning offline, one process, no accumulation; not to LoRA, GRPO or a run
    that accumulates or already updates in backward."""
    def offered(settings):
        return any(c.change.startswith("optim.update_in_backward")
                   for c in candidate_changes(settings))

    assert offered(PlanSettings("dpo"))
    assert not offered(PlanSettings("dpo", lora_rank=8))
    assert not offered(PlanSettings("grpo"))
    assert not offered(PlanSettings("sft", grad_accum=2))
    assert not offered(PlanSettings("sft", update_in_backward=True))
