"""The critic of PPO: a zero-initialised value head, on the policy's backbone or its own.

:class:`ActorCritic` holds the policy and the critic as one module, so the
engine builds one optimiser over both, wraps both for several processes and
checkpoints both; one call returns the response logits and values.
"""

from __future__ import annotations

import torch

from alignkit.models.load import init_causal_lm_from_config, load_causal_lm
from alignkit.models.reward import position_ids_from_mask
from alignkit.train.models_setup import use_model_options
from alignkit.train.online_forward import response_logits


class ValueHead(torch.nn.Module):
    """A linear map from hidden states to ``outputs`` values, starting at exactly 0.

    A zero start means the first advantages are the plain returns, and the
    head learns the scale of the rewards instead of starting from noise.
    """

    def __init__(self, hidden_size: int, outputs: int = 1) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, outputs)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., H) -> (..., outputs) in float32."""
        return self.linear(hidden.to(self.linear.weight.dtype)).float()


class ActorCritic(torch.nn.Module):
    """The policy and its critic as one module.

    Args:
        policy: the causal LM being trained (optionally peft-wrapped).
        head: the value head.
        critic_backbone: a separate transformer (no LM head) for the critic, or
            ``None`` to read the policy's own last hidden state.
    """

    def __init__(self, policy, head: ValueHead, critic_backbone=None) -> None:
        super().__init__()
        self.policy, self.head, self.critic_backbone = policy, head, critic_backbone

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                response_width: int, temperature: float = 1.0
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Response logits and values.

        Args:
            input_ids: (N, P + R). attention_mask: (N, P + R).
            response_width: ``R``.
            temperature: the sampling temperature.

        Returns:
            ``(logits, values)``: (N, R + 1, V) as
            :func:`~alignkit.train.online_forward.response_logits`, and
            (N, R, C) values of the states before each response token.
        """
        shared = self.critic_backbone is None
        logits, hidden = response_logits(self.policy, input_ids, attention_mask, response_width,
                                         temperature=temperature, hidden=shared)
        if not shared:
            hidden = self.critic_backbone(
                input_ids=input_ids, attention_mask=attention_mask,
                position_ids=position_ids_from_mask(attention_mask), use_cache=False,
            ).last_hidden_state[:, -(response_width + 1):-1]                 # (N, R, H)
        return logits, self.head(hidden)


def hidden_size_of(model) -> int:
    """The width of a transformer's hidden states, from its config."""
    config = model.config
    for name in ("hidden_size", "n_embd", "d_model"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    raise ValueError(f"cannot tell the hidden size of {type(model).__name__} from its config")


def build_critic_backbone(model_cfg, value_cfg, vocab_size: int, *, seed: int):
    """A separate critic backbone: from ``value.path``, else the policy's starting model."""
    path = value_cfg.path or model_cfg.path
    if path is not None:
        causal_lm = load_causal_lm(path, dtype=model_cfg.dtype,
                                   trust_remote_code=model_cfg.trust_remote_code,
                                   allow_pickle=model_cfg.allow_pickle,
                                   gradient_checkpointing=model_cfg.gradient_checkpointing)
    else:
        causal_lm = init_causal_lm_from_config(
            model_cfg.init_from_config, vocab_size=vocab_size, dtype=model_cfg.dtype, seed=seed,
            gradient_checkpointing=model_cfg.gradient_checkpointing)
    use_model_options(causal_lm, model_cfg)
    return causal_lm.base_model
