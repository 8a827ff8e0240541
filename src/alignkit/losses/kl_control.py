"""Controllers for the KL-penalty coefficient of online RL.

Both controllers share one interface: the coefficient is read from ``.coef``,
``update(current_kl, n_steps)`` adjusts it after a batch and returns it, and
``state_dict`` / ``load_state_dict`` let a resumed run continue exactly.
"""

from __future__ import annotations

from typing import Any

ADAPTIVE_ERROR_LIMIT = 0.2
"""The proportional error is clipped to ±this before it moves the coefficient."""


class AdaptiveKLController:
    """Proportional controller steering the measured KL towards a target.

    After a batch with mean KL ``current`` that covered ``n_steps`` samples,
    ``err = clip(current / target - 1, -0.2, 0.2)`` and
    ``coef ← coef · (1 + err · n_steps / horizon)`` (Ziegler et al. 2019,
    "Fine-Tuning Language Models from Human Preferences").

    Args:
        init_coef: starting coefficient (>= 0).
        target: KL the controller aims for (> 0).
        horizon: number of samples over which a full-sized error changes the
            coefficient by about 20 % (> 0).
        warmup: samples (>= 0) over which the coefficient is held at
            ``init_coef`` unless a batch's KL comes within the clip band of the
            target first (``current >= 0.8 · target``); from then on, or after
            the warm-up, every batch moves it. A run starts at KL 0 because the
            policy starts as the reference: without a warm-up those first
            batches wind the coefficient down (every error is -0.2), and the
            KL overshoots the target once it climbs. 0 is the plain rule.

    Attributes:
        engaged: whether the controller has started moving the coefficient.
        seen: samples of all batches so far.
    """

    def __init__(self, init_coef: float, target: float, horizon: float, *,
                 warmup: float = 0) -> None:
        if init_coef < 0 or target <= 0 or horizon <= 0 or warmup < 0:
            raise ValueError(
                "AdaptiveKLController needs init_coef >= 0, target > 0, horizon > 0 and "
                f"warmup >= 0; got init_coef={init_coef}, target={target}, horizon={horizon}, "
                f"warmup={warmup}"
            )
        self.coef = float(init_coef)
        self.target = float(target)
        self.horizon = float(horizon)
        self.warmup = float(warmup)
        self.engaged = False
        self.seen = 0

    def update(self, current_kl: float, n_steps: int) -> float:
        """Adjust the coefficient after a batch and return it.

        Args:
            current_kl: mean KL of the batch (a number or 0-d tensor).
            n_steps: samples in the batch.
        """
        error = float(current_kl) / self.target - 1
        self.seen += n_steps
        if not self.engaged:
            if self.seen <= self.warmup and error < -ADAPTIVE_ERROR_LIMIT:
                return self.coef
            self.engaged = True
        error = min(max(error, -ADAPTIVE_ERROR_LIMIT), ADAPTIVE_ERROR_LIMIT)
        self.coef *= 1 + error * n_steps / self.horizon
        return self.coef

    def state_dict(self) -> dict[str, Any]:
        """The controller's state, for checkpoints."""
        return {"coef": self.coef, "target": self.target, "horizon": self.horizon,
                "warmup": self.warmup, "engaged": self.engaged, "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.coef = float(state["coef"])
        self.target = float(state["target"])
        self.horizon = float(state["horizon"])
        # Checkpoints from before the warm-up existed resume with the plain rule.
        self.warmup = float(state.get("warmup", 0))
        self.engaged = bool(state.get("engaged", True))
        self.seen = int(state.get("seen", 0))


class FixedKLController:
    """A constant coefficient behind the controller interface.

    Args:
        coef: the coefficient (>= 0).
    """

    def __init__(self, coef: float) -> None:
        if coef < 0:
            raise ValueError(f"FixedKLController needs coef >= 0, got {coef}")
        self.coef = float(coef)

    def update(self, current_kl: float, n_steps: int) -> float:
        """Return the unchanged coefficient (the arguments are ignored)."""
        return self.coef

    def state_dict(self) -> dict[str, Any]:
        """The controller's state, for checkpoints."""
        return {"coef": self.coef}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.coef = float(state["coef"])
