"""Bytes that a training forward pass keeps for the backward pass, tensor by tensor.

The method is Korthikanti et al. (2022), "Reducing Activation Recomputation in
Large Transformer Models", section 4: count every tensor autograd saves in
one transformer layer, per token. Their closed form (``34 s b h`` bytes per
layer plus ``5 a s² b`` for the attention scores) is for GPT-3 blocks in fp16
with dropout; the terms below are worked out the same way for the decoder
layers transformers builds (pre-norm RMSNorm, rotary attention through
``scaled_dot_product_attention``, gated MLP) and for the dtypes our trainers
use, and are checked tensor for tensor against autograd's saved tensors in
``tests/unit/plan/test_activations.py``.

Notation, per token: ``h`` hidden size, ``q`` = heads x head_dim, ``kv`` =
kv_heads x head_dim, ``i`` intermediate size, ``S`` sequence length. ``R``
is the weights' (and the residual stream's) bytes per element; ``C`` the
bytes of matmul outputs: 2 under bf16 autocast or with bf16 weights, else 4.

* RMSNorm computes in fp32: it keeps its fp32 input (``4h``; a copy when the
  residual is bf16), ``rsqrt`` of the variance (4 bytes), and, when its weight
  trains, the normalised input (``R h``).
* A linear layer keeps its input when its weight trains. Under autocast each
  such layer keeps its own bf16 cast of the input (``C x in`` each; the casts
  are not shared), and every linear keeps the bf16 copy of its weight for the
  backward pass (``C`` bytes per weight). A LoRA layer's ``A`` keeps its input
  (in fp32, one copy per adapter, when the base is bf16 and the adapters fp32)
  and ``B`` keeps ``A``'s output (``r`` values).
* SDPA keeps query, key, value and output (``C (2q + 2kv)``; key and value are
  expanded to ``q`` when grouped-query heads meet a padding mask, which rules
  out SDPA's native GQA), its log-sum-exp (4 bytes x heads), and a float copy
  of the padding mask (``C S``). Eager attention also keeps the softmax
  probabilities in fp32 and in ``C`` (``heads x S x (4 + C)``): the ``a s²``
  term of Korthikanti et al.
* alignkit's matrix-product attention (``alignkit.models.attention``: CPU,
  half precision, a full pass of at most :data:`MATMUL_MAX_KEYS` keys) keeps
  the query, the key and value expanded to ``q`` under grouped-query heads,
  and the probabilities in ``C`` only (``heads x S x C``); with a padding
  mask, the boolean mask once per pass (``S`` bytes per token). Its causal
  form for Llama, Mistral and Qwen2 (``alignkit.models.causal_attention``: a
  pass with neither mask nor cache) keeps the same but key and value at
  their own width.
* The gated MLP keeps gate, up, act(gate) and their product (``4 C i``); a
  plain MLP its first projection and activation (``2 C i``).
* With the lean functions (``Numerics.lean``) an RMSNorm keeps its input in
  its own dtype and the scale (``R h + 4``), and the gated MLP does not keep
  act(gate) (``3 C i``).
"""

from __future__ import annotations

from dataclasses import dataclass

from alignkit.plan.architecture import Linear, ModelShape

FP32 = 4
LSE_BYTES = 4
"""Bytes per head and token of SDPA's log-sum-exp (always fp32)."""
TOKEN_ID_BYTES = 8
"""A trained embedding keeps the int64 token ids for its backward pass."""
MATMUL_MAX_KEYS = 512
"""The longest key sequence for which ``alignkit.models.attention`` takes its
matrix-product route (defined here, where no torch is imported, for both)."""


@dataclass(frozen=True)
class Trainable:
    """Which weights train.

    Attributes:
        full: every weight trains (full fine-tuning).
        adapted: names of the decoder-layer linear layers carrying LoRA adapters.
        rank: LoRA rank.
        adapter_bytes: bytes per adapter value (peft keeps adapters in fp32).
        head: the output head trains (full fine-tuning, or a reward model's score).
        embeddings: the input embeddings train.
    """

    full: bool
    adapted: frozenset[str] = frozenset()
    rank: int = 0
    adapter_bytes: int = FP32
    head: bool = False
    embeddings: bool = False

    @classmethod
    def everything(cls) -> Trainable:
        return cls(full=True, head=True, embeddings=True)


@dataclass(frozen=True)
class Numerics:
    """How a forward pass computes: ``weight_bytes`` R, whether bf16 autocast is on, and
    whether the lean RMSNorm and SwiGLU of :mod:`alignkit.models.lean_ops` are in use."""

    weight_bytes: int
    autocast: bool
    lean: bool = False
    four_bit: bool = False

    @property
    def compute_bytes(self) -> int:
        """C: bytes of matmul outputs."""
        return 2 if self.autocast or self.weight_bytes == 2 else self.weight_bytes

    @property
    def mlp_bytes(self) -> int:
        """Bytes of the MLP's projections and their product: C, but R over a 4-bit base,
        whose layers return their input's dtype (the fp32 residual of a QLoRA model)."""
        return self.weight_bytes if self.four_bit else self.compute_bytes

    @property
    def weight_copies(self) -> bool:
        """Autocast keeps a bf16 copy of each fp32 weight for the backward pass."""
        return self.autocast and self.weight_bytes == FP32


def _norm(shape: ModelShape, num: Numerics, trains: bool) -> int:
    if num.lean:
        return num.weight_bytes * shape.hidden + FP32
    return FP32 * shape.hidden + FP32 + (num.weight_bytes * shape.hidden if trains else 0)


def _kept_inputs(group: list[Linear], width: int, input_bytes: int, num: Numerics,
                 train: Trainable, *, already_kept: bool = False) -> int:
    """Bytes of input that the linear layers of ``group``, all fed one tensor, keep.

    ``input_bytes`` is that tensor's element size; ``already_kept`` says another
    operation keeps it anyway, so only copies of it cost more.
    """
    full = len(group) if train.full else 0
    lora = sum(lin.name in train.adapted for lin in group)
    if num.autocast:
        # A trained linear reuses an input that is already bf16; peft casts an
        # adapter's input to fp32 first, so autocast makes every adapter a copy.
        same = input_bytes == num.compute_bytes
        shared, copies, copy_bytes = same and full > 0, lora + (0 if same else full), 2
    else:
        same = train.adapter_bytes == input_bytes
        shared = full > 0 or (lora > 0 and same)
        copies, copy_bytes = (0 if same else lora), train.adapter_bytes
    kept_shared = input_bytes * width if shared and not already_kept else 0
    return kept_shared + copies * copy_bytes * width


def _attention(shape: ModelShape, num: Numerics, train: Trainable, seq_len: int, *,
               padded: bool, eager: bool, matmul: bool = False, fused: bool = False) -> int:
    c = num.compute_bytes
    expanded = shape.kv_heads < shape.heads and (padded or eager or (matmul and not fused))
    kept = c * (shape.q_dim + 2 * (shape.q_dim if expanded else shape.kv_dim))
    if matmul:
        kept += shape.heads * seq_len * c
    elif eager:
        # softmax keeps its fp32 output; the matmul with V keeps a C-byte copy of it
        probs = FP32 + (c if c < FP32 else 0)
        kept += shape.heads * seq_len * probs
    else:
        kept += c * shape.q_dim + LSE_BYTES * shape.heads + (c * seq_len if padded else 0)
    out = [lin for lin in shape.linears if lin.role == "attn_out"]
    # SDPA keeps its output, which is the output projection's input; the other two
    # hand the projection a tensor of its own.
    sdpa = not (eager or matmul)
    return kept + _kept_inputs(out, shape.q_dim, c, num, train, already_kept=sdpa)


def _mlp(shape: ModelShape, num: Numerics, train: Trainable) -> int:
    c, i = num.mlp_bytes, shape.intermediate
    down = [lin for lin in shape.linears if lin.role == "mlp_out"]
    # gated: gate (the activation's input), up and act(gate) (the product's inputs);
    # plain: the first projection (the activation's input)
    kept = (2 if num.lean else 3) * c * i if shape.gated_mlp else c * i
    return kept + _kept_inputs(down, i, c, num, train)


def _lora_outputs(shape: ModelShape, num: Numerics, train: Trainable) -> int:
    adapters = sum(lin.name in train.adapted for lin in shape.linears)
    per_value = num.compute_bytes if num.autocast else train.adapter_bytes
    return adapters * train.rank * per_value


def layer_bytes_per_token(shape: ModelShape, num: Numerics, train: Trainable, seq_len: int, *,
                          padded: bool = True, eager: bool = False, matmul: bool = False,
                          fused: bool = False) -> int:
    """Bytes one decoder layer keeps for backward, per token (weight copies excluded)."""
    norms_train = train.full
    attn_in = [lin for lin in shape.linears if lin.role == "attn_in"]
    mlp_in = [lin for lin in shape.linears if lin.role == "mlp_in"]
    return (_norm(shape, num, norms_train)
            + _kept_inputs(attn_in, shape.hidden, num.weight_bytes, num, train)
            + _attention(shape, num, train, seq_len, padded=padded, eager=eager, matmul=matmul,
                         fused=fused)
            + _norm(shape, num, norms_train)
            + _kept_inputs(mlp_in, shape.hidden, num.weight_bytes, num, train)
            + _mlp(shape, num, train)
            + _lora_outputs(shape, num, train))


def final_bytes_per_token(shape: ModelShape, num: Numerics, train: Trainable) -> int:
    """Bytes kept outside the layers, per token: the final norm, the head's input, the ids."""
    head_input = TOKEN_ID_BYTES if train.embeddings else 0
    if train.head:
        head_input += num.compute_bytes * shape.hidden if num.autocast \
            else num.weight_bytes * shape.hidden
    return _norm(shape, num, train.full) + head_input


def first_layer_saving_per_token(shape: ModelShape, num: Numerics, train: Trainable) -> int:
    """What the first layer's norm does not keep when nothing before it trains."""
    return 0 if train.full or train.embeddings else _norm(shape, num, trains=False)


def weight_copy_bytes(shape: ModelShape, num: Numerics, train: Trainable,
                      *, layers: int | None = None) -> int:
    """bf16 copies of fp32 weights that autocast keeps for backward (0 without them).

    Covers the linear layers of ``layers`` decoder layers (all by default) and
    their adapters; the output head is :func:`head_copy_bytes`. When nothing
    before the first layer trains, that layer's query/key/value projections
    see an input without gradient, so their frozen weights (and the adapters'
    ``A``) need not be kept.
    """
    if not num.weight_copies:
        return 0
    count = shape.layers if layers is None else layers
    base = 0 if num.four_bit else 1  # a 4-bit layer dequantises inside its own kernel
    per_layer = sum(base * lin.params + _adapter_params(lin, train) for lin in shape.linears)
    kept = per_layer * count
    if count == shape.layers and first_layer_saving_per_token(shape, num, train):
        kept -= sum(base * lin.params + train.rank * lin.in_features * (lin.name in train.adapted)
                    for lin in shape.linears if lin.role == "attn_in")
    return num.compute_bytes * kept


def _adapter_params(lin: Linear, train: Trainable) -> int:
    return train.rank * (lin.in_features + lin.out_features) if lin.name in train.adapted else 0


def head_copy_bytes(shape: ModelShape, num: Numerics) -> int:
    """The output head's bf16 copy under autocast (kept until its backward)."""
    return num.compute_bytes * shape.head_params if num.weight_copies else 0


def activation_bytes(shape: ModelShape, num: Numerics, train: Trainable, *, rows: int,
                     seq_len: int, checkpointing: bool = False, padded: bool = True,
                     eager: bool = False, key_len: int | None = None,
                     matmul: bool = False, fused: bool = False) -> int:
    """Activations kept through one forward pass of ``rows`` x ``seq_len`` tokens.

    Weight copies are left out (see :func:`weight_copy_bytes`). With gradient
    checkpointing each layer keeps only its input (``R h`` per token) and one
    layer's activations are rebuilt at a time during backward. ``key_len``:
    the positions each token attends over when a KV cache holds earlier ones
    (``seq_len`` by default); the cached keys and values are not counted.
    ``matmul``: the pass runs alignkit's matrix-product attention; ``fused``: as
    its causal attention function (no mask, no cache, a supported family).
    """
    tokens = rows * seq_len
    layer = layer_bytes_per_token(shape, num, train, key_len or seq_len, padded=padded,
                                  eager=eager, matmul=matmul, fused=fused and matmul)
    final = final_bytes_per_token(shape, num, train)
    if matmul and padded:
        final += key_len or seq_len  # the boolean mask, one byte per query and key
    if checkpointing:
        kept = shape.layers * num.weight_bytes * shape.hidden + layer
        return tokens * (kept + final)
    first = first_layer_saving_per_token(shape, num, train)
    return tokens * (shape.layers * layer + final - first)
