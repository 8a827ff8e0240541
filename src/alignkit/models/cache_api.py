"""The KV cache under either name transformers gives it.

transformers 5.24 renamed the forward keyword and the output field
``past_key_values`` to ``cache`` (the old keyword still works, with a
deprecation warning, until 5.40; the old output field is gone). alignkit
supports transformers from 5.0, so it passes and reads the cache under the
name the model's own forward takes.
"""

from __future__ import annotations

from alignkit.models.lora import forward_takes

NAMES = ("cache", "past_key_values")
"""The cache's name in transformers from 5.24 on, and before."""


def cache_keyword(model) -> str | None:
    """The keyword under which ``model``'s forward takes a KV cache (``None``: it takes none)."""
    return next((name for name in NAMES if forward_takes(model, name)), None)


def with_cache(model, cache) -> dict:
    """Forward keyword arguments that hand ``cache`` to ``model``."""
    return {cache_keyword(model) or "past_key_values": cache}


def returned_cache(output):
    """The KV cache a forward pass returned (``output.cache`` or ``output.past_key_values``)."""
    for name in NAMES:
        cache = getattr(output, name, None)
        if cache is not None:
            return cache
    return None
