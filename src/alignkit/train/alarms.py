"""Alarms on the implicit-reward metrics of a DPO-family run.

Two known ways a preference run goes wrong show in its per-step metrics:

* **Margin jump.** The mean reward margin of the last ``window`` steps moves
  away from that of the ``window`` steps before by more than ``share`` of the
  earlier mean (of at least ``floor``), within one epoch: the learning rate is
  too high for ``beta``, and the policy runs away from the reference. Only one
  epoch's history is compared, because a new epoch revisits seen examples and
  their margins are legitimately higher.
* **Both rewards falling.** Over ``falling_window`` steps the chosen and the
  rejected implicit rewards both trend down (negative least-squares slopes)
  while the chosen reward is below zero: the policy widens the margin by
  making the chosen response *less* likely too, a known DPO failure.

The checks are pure functions of metric sequences; :class:`AlarmMonitor` keeps
the history (JSON-able, saved in checkpoints so a resumed run continues it)
and clears a check's history once it fires, so one episode raises one alarm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Alarm:
    """One alarm: a machine-friendly ``name``, a sentence for a person, and its numbers."""

    name: str
    message: str
    data: dict[str, float] = field(default_factory=dict)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def margin_jump(margins: Sequence[float], *, window: int, share: float,
                floor: float) -> float | None:
    """The relative change of the margin when it exceeds ``share``, else ``None``.

    With ``before`` the mean of ``margins[-2w:-w]`` and ``after`` that of
    ``margins[-w:]``, the change is ``(after - before) / max(|before|, floor)``.

    Args:
        margins: the reward margin of each step of the current epoch, oldest first.
        window: ``w``, steps averaged on each side.
        share: the largest change in absolute value that raises no alarm.
        floor: the smallest scale the change is measured against.
    """
    if len(margins) < 2 * window:
        return None
    before = _mean(margins[-2 * window:-window])
    after = _mean(margins[-window:])
    change = (after - before) / max(abs(before), floor)
    return change if abs(change) > share else None


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against 0, 1, 2, ... (0 for fewer than two values)."""
    n = len(values)
    if n < 2:
        return 0.0
    x_mean, y_mean = (n - 1) / 2, _mean(values)
    covariance = sum((i - x_mean) * (y - y_mean) for i, y in enumerate(values))
    variance = sum((i - x_mean) ** 2 for i in range(n))
    return covariance / variance


def rewards_falling(chosen: Sequence[float], rejected: Sequence[float], *,
                    window: int, floor: float = 0.0) -> tuple[float, float] | None:
    """The two slopes when both rewards fall over the last ``window`` steps, else ``None``.

    Both least-squares slopes must be negative and the mean chosen reward of
    the window below ``-floor`` (the chosen response lost probability against
    the reference, not only relative to the rejected one, and by more than noise).
    """
    if len(chosen) < window or len(rejected) < window:
        return None
    recent_chosen, recent_rejected = chosen[-window:], rejected[-window:]
    chosen_slope, rejected_slope = slope(recent_chosen), slope(recent_rejected)
    if chosen_slope < 0 and rejected_slope < 0 and _mean(recent_chosen) < -floor:
        return chosen_slope, rejected_slope
    return None


class AlarmMonitor:
    """Feeds each step's metrics to the checks; remembers what they need.

    Args:
        settings: the ``alarms`` config section.
        state: what :meth:`state` returned in an earlier run (from a checkpoint).
    """

    def __init__(self, settings, state: Mapping | None = None) -> None:
        self.settings = settings
        state = state or {}
        self.epoch: int | None = state.get("epoch")
        self.margins: list[float] = list(state.get("margins", []))
        self.chosen: list[float] = list(state.get("chosen", []))
        self.rejected: list[float] = list(state.get("rejected", []))

    def state(self) -> dict:
        """The history, as JSON-able data."""
        return {"epoch": self.epoch, "margins": self.margins, "chosen": self.chosen,
                "rejected": self.rejected}

    def update(self, step: int, epoch: int, metrics: Mapping[str, float]) -> list[Alarm]:
        """Record the metrics of ``step`` (in ``epoch``); the alarms they raise.

        Steps without both ``chosen_reward`` and ``rejected_reward`` (e.g. RRHF),
        or with a non-finite one, are ignored.
        """
        s = self.settings
        chosen, rejected = metrics.get("chosen_reward"), metrics.get("rejected_reward")
        if not s.enabled or chosen is None or rejected is None \
                or not (math.isfinite(chosen) and math.isfinite(rejected)):
            return []
        if epoch != self.epoch:
            self.epoch, self.margins = epoch, []
        self.margins = [*self.margins, chosen - rejected][-2 * s.margin_window:]
        self.chosen = [*self.chosen, chosen][-s.falling_window:]
        self.rejected = [*self.rejected, rejected][-s.falling_window:]
        return [alarm for alarm in (self._margin_alarm(step), self._falling_alarm(step)) if alarm]

    def _margin_alarm(self, step: int) -> Alarm | None:
        s = self.settings
        change = margin_jump(self.margins, window=s.margin_window, share=s.margin_jump,
                             floor=s.margin_floor)
        if change is None:
            return None
        before = _mean(self.margins[:s.margin_window])
        after = _mean(self.margins[s.margin_window:])
        self.margins = []
        return Alarm("margin_jump", (
            f"reward margin moved from {before:.3g} to {after:.3g} (mean of {s.margin_window} "
            f"steps each) by step {step}, {change:+.0%} of the earlier level: the learning rate "
            "may be too high for beta"), {"margin_before": before, "margin_after": after,
                                           "relative_change": change})

    def _falling_alarm(self, step: int) -> Alarm | None:
        s = self.settings
        slopes = rewards_falling(self.chosen, self.rejected, window=s.falling_window,
                                 floor=s.falling_floor)
        if slopes is None:
            return None
        chosen_mean = _mean(self.chosen)
        self.chosen, self.rejected = [], []
        return Alarm("rewards_falling", (
            f"chosen and rejected rewards have both fallen for {s.falling_window} steps up to "
            f"step {step} (chosen mean {chosen_mean:.3g}): the chosen responses are losing "
            "probability too; consider a lower learning rate or a higher beta"),
            {"chosen_slope": slopes[0], "rejected_slope": slopes[1],
             "chosen_reward_mean": chosen_mean})
