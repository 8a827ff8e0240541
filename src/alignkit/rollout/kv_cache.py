"""A KV cache that grows by writing into reserved room instead of re-copying itself.

transformers' ``DynamicLayer`` appends each new token with ``torch.cat``, which
copies the whole cache of the layer on every decoding step: the work grows
with the square of the response length, and on a busy CPU it can cost more
than the matrix products (about 40% of a 64-token rollout of a 3.7M-parameter
model in one profile). :func:`reserve` gives every plain dynamic layer of a
cache a buffer with room for ``extra`` more positions; appending then writes
one column, and the layer's ``keys``/``values`` are views of the filled part.
Layers of any other kind (sliding-window, quantised, ...) are left as they are.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer


def window_cuts(config, length: int) -> bool:
    """Whether the model's sliding window is shorter than ``length`` tokens.

    Then transformers keeps only the window's last keys and values, and the
    attention differs from full attention over the sequence.
    """
    window = getattr(config, "sliding_window", None)
    return window is not None and getattr(config, "use_sliding_window", True) and \
        window < length


def with_room(cached: torch.Tensor, extra: int) -> torch.Tensor:
    """A (B, H, L + extra, D) buffer whose first L positions hold ``cached`` (B, H, L, D)."""
    batch, heads, length, dim = cached.shape
    buffer = cached.new_empty((batch, heads, length + extra, dim))
    buffer[:, :, :length] = cached
    return buffer


class ReservedLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys and values sit at the start of larger buffers.

    Args:
        layer: an initialised ``DynamicLayer`` (after the prompt's forward pass).
        extra: positions of room to reserve after the cached ones.
    """

    def __init__(self, layer: DynamicLayer, extra: int) -> None:
        super().__init__()
        # transformers 5.24 no longer records the layer's dtype; its keys carry it.
        self.dtype, self.device, self.is_initialized = layer.keys.dtype, layer.device, True
        self._keys, self._values = with_room(layer.keys, extra), with_room(layer.values, extra)
        self._length = layer.keys.shape[-2]
        self._refresh()

    def _refresh(self) -> None:
        self.keys = self._keys[:, :, :self._length]
        self.values = self._values[:, :, :self._length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions into the reserved room (or concatenate once it is full)."""
        new = key_states.shape[-2]
        if self._length + new > self._keys.shape[-2]:
            self._keys = torch.cat([self.keys, key_states], dim=-2)
            self._values = torch.cat([self.values, value_states], dim=-2)
        else:
            self._keys[:, :, self._length:self._length + new] = key_states
            self._values[:, :, self._length:self._length + new] = value_states
        self._length += new
        self._refresh()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self._length

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._keys = self._keys.repeat_interleave(repeats, dim=0)
        self._values = self._values.repeat_interleave(repeats, dim=0)
        self._refresh()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys = self._keys[indices]
        self._values = self._values[indices]
        self._refresh()


def reserve(cache, extra: int) -> None:
    """Give every initialised plain ``DynamicLayer`` of ``cache`` room for ``extra`` positions."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        return
    for index, layer in enumerate(layers):
        if type(layer) is DynamicLayer and layer.is_initialized and layer.keys.numel():
            layers[index] = ReservedLayer(layer, extra)
