"""The activation formulas against the tensors autograd really keeps, byte for byte.

A tiny Llama (h=64, i=160, 4 heads, 2 KV heads, 2 layers, vocabulary 96) runs
one forward pass of 2 rows x 32 tokens under ``saved_tensors_hooks``; every
distinct storage saved for backward that is not a parameter and that belongs
to the batch (its first dimension is the batch or batch x tokens) is summed.
The rotary cos/sin tables (batch dimension 1, a few KiB per forward) are the
only saved tensors left out. The same is done for a reward model (score head).
"""

import json
import weakref

import pytest
import torch

from alignkit.models.lean_ops import make_lean
from alignkit.plan.activations import (
    Numerics,
    Trainable,
    activation_bytes,
    head_copy_bytes,
    layer_bytes_per_token,
    weight_copy_bytes,
)
from alignkit.plan.architecture import describe_model

CONFIG = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
              tie_word_embeddings=False, vocab_size=96)
ROWS, SEQ = 2, 32


def _model(tmp_path, *, dtype, lora_targets=None, reward=False, checkpointing=False,
           attention="sdpa", lean=False):
    from alignkit.models.load import init_causal_lm_from_config
    from alignkit.models.lora import apply_lora
    from alignkit.models.reward import init_reward_model_from_config

    path = tmp_path / "config.json"
    path.write_text(json.dumps(dict(CONFIG, attn_implementation=attention)))
    if reward:
        model = init_reward_model_from_config(path, dtype=dtype, pad_token_id=0)
    else:
        model = init_causal_lm_from_config(path, dtype=dtype,
                                           gradient_checkpointing=checkpointing)
    model.config._attn_implementation = attention
    if lean:
        make_lean(model)
    if lora_targets is not None:
        model = apply_lora(model, r=8, alpha=16, dropout=0.0, target_modules=lora_targets,
                           task_type="SEQ_CLS" if reward else "CAUSAL_LM",
                           modules_to_save=["score"] if reward else None)
    return model.train()


def _saved_batch_bytes(model, *, autocast: bool, padded: bool) -> int:
    ids = torch.randint(4, 96, (ROWS, SEQ), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(ROWS, SEQ, dtype=torch.long)
    if padded:
        mask[0, -5:] = 0
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        return _saved_storages(lambda: model(input_ids=ids, attention_mask=mask), model)


def _saved_storages(forward, model) -> int:
    """Bytes of the distinct batch storages (no parameters) saved for backward by ``forward()``
    and still held once it has returned (a graph that no output needs is freed)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: list[weakref.ref] = []

    def pack(tensor):
        if tensor.dim() > 0 and tensor.shape[0] != 1:
            saved.append(weakref.ref(tensor))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        output = forward()  # noqa: F841 (keeps the graph alive while the storages are read)
        held = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                for t in (ref() for ref in saved) if t is not None}
    return sum(n for ptr, n in held.items() if ptr not in params)


CASES = {
    # name: (weights dtype, autocast, LoRA targets, padded)
    "fp32": ("fp32", False, None, True),
    "fp32-unpadded": ("fp32", False, None, False),
    "fp32-autocast": ("fp32", True, None, True),
    "bf16": ("bf16", False, None, True),
    "lora-fp32": ("fp32", False, "all-linear", True),
    "lora-qv": ("fp32", False, ["q_proj", "v_proj"], True),
    "lora-autocast": ("fp32", True, "all-linear", True),
    "lora-bf16": ("bf16", False, "all-linear", True),
}


@pytest.mark.parametrize("lean", [False, True])
@pytest.mark.parametrize("name", list(CASES))
def test_activation_formula_equals_the_saved_tensors(tmp_path, name, lean):
    dtype, autocast, targets, padded = CASES[name]
    model = _model(tmp_path, dtype=dtype, lora_targets=targets, lean=lean)
    measured = _saved_batch_bytes(model, autocast=autocast, padded=padded)
    shape = describe_model("tiny", CONFIG)
    assert shape.lean_ops
    num = Numerics(4 if dtype == "fp32" else 2, autocast, lean=lean)
    if targets is None:
        train = Trainable.everything()
    else:
        names = {lin.name for lin in shape.linears} if targets == "all-linear" else set(targets)
        train = Trainable(full=False, adapted=frozenset(names), rank=8)
    predicted = (activation_bytes(shape, num, train, rows=ROWS, seq_len=SEQ, padded=padded)
                 + weight_copy_bytes(shape, num, train) + head_copy_bytes(shape, num))
    assert predicted == measured



def test_eager_attention_keeps_the_probabilities(tmp_path):
    """Eager attention keeps softmax's fp32 output (heads x S x 4 bytes per token and layer,
    4 x 32 x 4 = 512 here) instead of SDPA's output, log-sum-exp and mask copy."""
    model = _model(tmp_path, dtype="fp32", attention="eager")
    measured = _saved_batch_bytes(model, autocast=False, padded=True)
    shape = describe_model("tiny", CONFIG)
    predicted = activation_bytes(shape, Numerics(4, False), Trainable.everything(), rows=ROWS,
                                 seq_len=SEQ, eager=True)
    assert predicted == measured


@pytest.mark.parametrize("targets", [None, "all-linear"])
def test_reward_model(tmp_path, targets):
    """A reward model's score head keeps its input like a trained lm_head would. The only
    tensors the formula leaves out are the classifier's two (B,) int64 index tensors that
    pick each row's last token: 2 x 2 x 8 = 32 bytes."""
    model = _model(tmp_path, dtype="fp32", lora_targets=targets, reward=True)
    measured = _saved_batch_bytes(model, autocast=False, padded=True)
    shape = describe_model("tiny", CONFIG, head="reward")
    if targets is None:
        train = Trainable.everything()
    else:
        names = frozenset(lin.name for lin in shape.linears)
        train = Trainable(full=False, adapted=names, rank=8, head=True)
    predicted = activation_bytes(shape, Numerics(4, False), train, rows=ROWS, seq_len=SEQ)
    assert measured - predicted == 2 * ROWS * 8


def test_checkpointing_keeps_layer_inputs_and_rebuilds_one_layer(tmp_path):
    """With checkpointing, the forward keeps each layer's input (4h = 256 bytes per token and
    layer) plus what follows the last layer (final norm 4h + 4 + 4h, lm_head input 4h, ids
    8: 780 bytes per token); the formula adds one layer's full activations, rebuilt during
    backward. So the saved bytes are (2 x 256 + 780) x 64 tokens = 82,688."""
    model = _model(tmp_path, dtype="fp32", checkpointing=True)
    measured = _saved_batch_bytes(model, autocast=False, padded=True)
    shape = describe_model("tiny", CONFIG)
    num, train = Numerics(4, False), Trainable.everything()
    rebuilt = ROWS * SEQ * layer_bytes_per_token(shape, num, train, SEQ, padded=True)
    predicted = activation_bytes(shape, num, train, rows=ROWS, seq_len=SEQ, checkpointing=True)
    assert measured == (2 * 256 + 780) * ROWS * SEQ == 82_688
    assert predicted - rebuilt == measured


def test_layer_bytes_by_hand():
    """fp32, full fine-tuning, no padding, per token of one layer (h=64, q=64, kv=32, i=160):
    two norms 2 x (4h + 4 + 4h) = 1032; the q/k/v input 4h = 256; SDPA keeps q, k, v
    4 x (64 + 32 + 32) = 512, its output 4 x 64 = 256 and log-sum-exp 4 x 4 heads = 16
    (the output is also o_proj's input: nothing more); the gate/up input 256; gate, up,
    act 3 x 4 x 160 = 1920; the product (down's input) 640. Sum: 4,888. A padding mask
    expands k and v to 64 each (+ 4 x 64) and adds its float copy (4 x S = 128)."""
    shape = describe_model("tiny", CONFIG)
    num, train = Numerics(4, False), Trainable.everything()
    assert layer_bytes_per_token(shape, num, train, SEQ, padded=False) == 4_888
    assert layer_bytes_per_token(shape, num, train, SEQ, padded=True) == 4_888 + 256 + 128


@pytest.mark.parametrize("precision", ["fp32", "bf16-cpu-attention"])
@pytest.mark.parametrize("padded", [False, True])
def test_shared_prompt_pass_equals_the_saved_tensors(tmp_path, padded, precision):
    """RLOO/GRPO's pass that runs each prompt once (2 prompts of P=12 tokens, k=2, R=8
    response tokens): the prompts but their last token once, each row's last prompt token and
    response over the cache, and each row's copy of the prompt's keys and values, expanded to
    the 4 query heads. Left out by the formula, and added here: the rotary tables of per-row
    positions (cos and sin, 16 x 4 bytes each per token of both passes), the id storages the
    embeddings keep (the whole 4 x 20 ids and the 2 x 22 prompt ids-and-mask rows, where the
    formula counts 8 bytes per token of each pass) and the cache's 4 row indices; taken away:
    the prompt pass's final-norm output and head input (2 x 64 x 4 bytes per prompt token;
    the head's input is a 2-byte copy under autocast), which autograd frees with the prompt's
    unused logit. Under bf16 autocast with alignkit's CPU attention both passes take the
    matrix-product route, and autocast's bf16 weight copies are kept too."""
    from alignkit.models.attention import install
    from alignkit.plan.memory import _pass_activations
    from alignkit.plan.settings import PlanSettings
    from alignkit.train.prompt_sharing import shared_prompt_logits

    model = _model(tmp_path, dtype="fp32")
    bf16 = precision != "fp32"
    if bf16:
        assert install(model)
    prompt_len, response = 12, 8
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(4, 96, (2, prompt_len), generator=gen).repeat_interleave(2, dim=0)
    ids = torch.cat([prompts, torch.randint(4, 96, (4, response), generator=gen)], dim=1)
    mask = torch.ones_like(ids)
    if padded:
        mask[:2, :3] = 0  # the first prompt left-padded
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        kept = _saved_storages(lambda: shared_prompt_logits(model, ids, mask, response), model)
    settings = PlanSettings("grpo", dtype="fp32", precision="bf16" if bf16 else "fp32",
                            batch_size=2, samples=2, prompt_len=prompt_len,
                            completion_len=response, padded=padded, on_cpu=True)
    assert settings.shares_prompts
    shape = describe_model("tiny", CONFIG)
    num = Numerics(4, bf16)
    predicted = _pass_activations(shape, settings, num, Trainable.everything())
    if bf16:
        predicted += (weight_copy_bytes(shape, num, Trainable.everything())
                      + head_copy_bytes(shape, num))
    row_tokens, prompt_tokens = 4 * 9, 2 * 11
    rotary = 2 * 16 * 4 * (row_tokens + prompt_tokens)
    ids_left_out = 8 * (4 * 20 - row_tokens) + 8 * (2 * 22 - prompt_tokens) + 4 * 8
    freed = prompt_tokens * 64 * (4 + (2 if bf16 else 4))
    assert predicted + rotary + ids_left_out - freed == kept


@pytest.mark.parametrize("lean", [False, True])
def test_4bit_base_equals_the_saved_tensors(tmp_path, lean):
    """QLoRA as the trainers load it (NF4, bf16 compute, peft's k-bit preparation leaving the
    norms and head in fp32), LoRA on every linear layer, bf16 autocast. Its 4-bit layers return
    fp32 (their input's dtype), so the MLP keeps fp32 projections; autocast keeps bf16 copies
    of the adapters and the head, and none of the 4-bit weights. Runs where bitsandbytes is
    installed (its CPU backend)."""
    pytest.importorskip("bitsandbytes")
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from alignkit.models.load import init_causal_lm_from_config
    from alignkit.models.lora import apply_lora

    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    init_causal_lm_from_config(tmp_path / "config.json", dtype="bf16").save_pretrained(
        tmp_path / "base")
    four_bit = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base", quantization_config=four_bit,
                                                 device_map={"": "cpu"}, dtype=torch.bfloat16)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if lean:
        make_lean(model)
    model = apply_lora(model, r=8, alpha=16, dropout=0.0, target_modules="all-linear",
                       task_type="CAUSAL_LM").train()
    measured = _saved_batch_bytes(model, autocast=True, padded=True)
    shape = describe_model("tiny", CONFIG)
    num = Numerics(4, True, lean=lean, four_bit=True)
    train = Trainable(full=False, adapted=frozenset(lin.name for lin in shape.linears), rank=8)
    predicted = (activation_bytes(shape, num, train, rows=ROWS, seq_len=SEQ, padded=True)
                 + weight_copy_bytes(shape, num, train) + head_copy_bytes(shape, num))
    assert predicted == measured


@pytest.mark.parametrize("lean", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("dtype, autocast", [("bf16", False), ("fp32", True)])
def test_matmul_attention_formula_equals_the_saved_tensors(tmp_path, dtype, autocast, padded,
                                                           lean):
    """alignkit's CPU attention (bf16, 32 keys) keeps q and k, v expanded to q's width and
    the bf16 probabilities; with a padding mask, the boolean mask once (S bytes per token)."""
    from alignkit.models.attention import NAME, install

    model = _model(tmp_path, dtype=dtype, lean=lean)
    assert install(model)
    measured = _saved_batch_bytes(model, autocast=autocast, padded=padded)
    shape = describe_model("tiny", CONFIG)
    num = Numerics(4 if dtype == "fp32" else 2, autocast, lean=lean)
    train = Trainable.everything()
    predicted = (activation_bytes(shape, num, train, rows=ROWS, seq_len=SEQ, padded=padded,
                                  matmul=True)
                 + weight_copy_bytes(shape, num, train) + head_copy_bytes(shape, num))
    assert model.config._attn_implementation == NAME
    assert predicted == measured


def test_matmul_layer_bytes_by_hand():
    """bf16 weights, full fine-tuning, per token of one layer: two norms 2 x (4h + 4 + 2h) =
    776; the q/k/v input 2h = 128; q and k, v expanded 2 x (64 + 2 x 64) = 384; the
    probabilities 4 heads x 32 keys x 2 = 256; o_proj's input 2 x 64 = 128; the gate/up input
    128; gate, up, act 3 x 2 x 160 = 960; down's input 320. Sum: 3,080 (with or without
    a padding mask: the mask is counted once per pass, not per layer)."""
    shape = describe_model("tiny", CONFIG)
    num, train = Numerics(2, False), Trainable.everything()
    for padded in (False, True):
        assert layer_bytes_per_token(shape, num, train, SEQ, padded=padded, matmul=True) == 3_080


@pytest.mark.parametrize("lean", [False, True])
@pytest.mark.parametrize("dtype, autocast", [("bf16", False), ("fp32", True)])
def test_causal_attention_formula_equals_the_saved_tensors(tmp_path, dtype, autocast, lean,
                                                           monkeypatch):
    """The causal form of the CPU attention (no mask, no cache) keeps q, and k and v at their
    own width (2 KV heads of 4), and the bf16 probabilities."""
    from alignkit.models import causal_attention
    from alignkit.models.attention import install

    calls = []
    original = causal_attention.CausalSelfAttention.apply
    monkeypatch.setattr(causal_attention.CausalSelfAttention, "apply",
                        lambda *args: calls.append(args[0].shape) or original(*args))
    model = _model(tmp_path, dtype=dtype, lean=lean)
    assert install(model) and causal_attention.install(model)
    ids = torch.randint(4, 96, (ROWS, SEQ), generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        measured = _saved_storages(lambda: model(input_ids=ids, use_cache=False), model)
    assert len(calls) == CONFIG["num_hidden_layers"]
    shape = describe_model("tiny", CONFIG)
    num = Numerics(4 if dtype == "fp32" else 2, autocast, lean=lean)
    train = Trainable.everything()
    predicted = (activation_bytes(shape, num, train, rows=ROWS, seq_len=SEQ, padded=False,
                                  matmul=True, fused=True)
                 + weight_copy_bytes(shape, num, train) + head_copy_bytes(shape, num))
    general = activation_bytes(shape, num, train, rows=ROWS, seq_len=SEQ, padded=False,
                               matmul=True)
    assert predicted == measured
    assert general - activation_bytes(shape, num, train, rows=ROWS, seq_len=SEQ, padded=False,
                                      matmul=True, fused=True) \
        == ROWS * SEQ * CONFIG["num_hidden_layers"] * 2 * 2 * (64 - 32)
