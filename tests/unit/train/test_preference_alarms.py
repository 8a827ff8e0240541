"""DPO alarms on synthetic metric sequences: margin jumps within an epoch, both rewards falling."""

import json

import pytest

from alignkit.train.alarms import AlarmMonitor, margin_jump, rewards_falling, slope
from alignkit.train.dpo_config import AlarmSettings


def test_margin_jump_compares_window_means_against_the_earlier_level():
    """Window 4: before = mean(1, 1, 1, 1) = 1, after = mean(3, 3, 3, 3) = 3,
    change = (3 - 1) / max(|1|, floor 1) = 2.0: above share 1.0, below share 2.5."""
    margins = [1.0] * 4 + [3.0] * 4
    assert margin_jump(margins, window=4, share=1.0, floor=1.0) == pytest.approx(2.0)
    assert margin_jump(margins, window=4, share=2.5, floor=1.0) is None
    assert margin_jump(margins[1:], window=4, share=1.0, floor=1.0) is None  # too short


def test_margin_jump_uses_the_floor_for_tiny_margins_and_sees_drops():
    """0.01 -> 0.05 is +400% of 0.01, but against the floor 1 it is (0.05 - 0.01) / 1 = 0.04.
    A collapse 2 -> 0.5 is (0.5 - 2) / 2 = -0.75, beyond share 0.5 in absolute value."""
    assert margin_jump([0.01] * 3 + [0.05] * 3, window=3, share=1.0, floor=1.0) is None
    assert margin_jump([2.0] * 3 + [0.5] * 3, window=3, share=0.5,
                       floor=1.0) == pytest.approx(-0.75)


def test_slope_is_the_least_squares_slope():
    """[0, 1, 2, 3] rises by 1 a step; [3, 1] falls by 2; [1, 3, 2]: x̄ = 1, ȳ = 2,
    Σ(x - x̄)(y - ȳ) = (-1)(-1) + 0 + (1)(0) = 1, Σ(x - x̄)² = 2, slope 0.5."""
    assert slope([0.0, 1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert slope([3.0, 1.0]) == pytest.approx(-2.0)
    assert slope([1.0, 3.0, 2.0]) == pytest.approx(0.5)
    assert slope([5.0]) == 0.0


def test_rewards_falling_needs_both_slopes_down_and_chosen_below_zero():
    """Chosen -0.1, -0.2, -0.3, -0.4 (slope -0.1); rejected -0.2, -0.5, -0.9, -1.4:
    x̄ = 1.5, ȳ = -0.75, Σ(x - x̄)(y - ȳ) = -0.825 - 0.125 - 0.075 - 0.975 = -2.0,
    Σ(x - x̄)² = 5, slope -0.4."""
    chosen = [-0.1, -0.2, -0.3, -0.4]
    rejected = [-0.2, -0.5, -0.9, -1.4]
    assert rewards_falling(chosen, rejected, window=4) == pytest.approx((-0.1, -0.4))
    healthy = [0.1, 0.2, 0.3, 0.4]  # chosen rising while rejected falls
    assert rewards_falling(healthy, rejected, window=4) is None
    still_positive = [0.9, 0.8, 0.7, 0.6]  # both falling, but chosen above the reference
    assert rewards_falling(still_positive, rejected, window=4) is None
    assert rewards_falling(chosen[1:], rejected[1:], window=4) is None
    # The chosen mean is -0.25: below a floor of 0.2, not below one of 0.3.
    assert rewards_falling(chosen, rejected, window=4, floor=0.2) == pytest.approx((-0.1, -0.4))
    assert rewards_falling(chosen, rejected, window=4, floor=0.3) is None


def test_the_default_floor_ignores_a_drift_within_noise():
    """Chosen rewards falling from -0.01 to -0.03 (mean -0.02), as in a healthy demo run with
    the NLL term: the default floor of 0.05 keeps the alarm quiet; a floor of 0 fires it."""
    rows = [(-0.01 - 0.005 * i, -0.1 * i) for i in range(5)]
    assert _feed(AlarmMonitor(AlarmSettings(margin_window=50, falling_window=5)), rows) == []
    settings = AlarmSettings(margin_window=50, falling_window=5, falling_floor=0.0)
    assert _feed(AlarmMonitor(settings), rows) == [(5, "rewards_falling")]


def _feed(monitor, rows, epoch=0, start=1):
    fired = []
    for step, (chosen, rejected) in enumerate(rows, start=start):
        fired += [(step, a.name) for a in monitor.update(step, epoch, {
            "chosen_reward": chosen, "rejected_reward": rejected})]
    return fired


def test_monitor_raises_one_margin_alarm_per_episode():
    """Margins 0.5 for 3 steps then 4.0: after 3 high steps the change is
    (4 - 0.5) / max(0.5, 1) = 3.5 > 1, at step 6. The history is then cleared, so the next
    three high steps (their margins equal) raise nothing more."""
    monitor = AlarmMonitor(AlarmSettings(margin_window=3, falling_window=50))
    rows = [(0.25, -0.25)] * 3 + [(2.0, -2.0)] * 6
    assert _feed(monitor, rows) == [(6, "margin_jump")]


def test_monitor_does_not_compare_margins_across_epochs():
    """The same jump split over an epoch boundary raises nothing: epoch 1 starts afresh."""
    monitor = AlarmMonitor(AlarmSettings(margin_window=3, falling_window=50))
    assert _feed(monitor, [(0.25, -0.25)] * 3, epoch=0) == []
    assert _feed(monitor, [(2.0, -2.0)] * 3, epoch=1, start=4) == []


def test_monitor_raises_the_falling_alarm_and_survives_a_checkpoint():
    """Both rewards fall by 0.1 and 0.3 a step from 0: over a window of 5 both slopes are
    negative and the chosen mean is below 0, first at step 5. A monitor rebuilt from the
    JSON state after step 3 fires at the same step."""
    rows = [(-0.1 * i, -0.3 * i) for i in range(8)]
    settings = AlarmSettings(margin_window=50, falling_window=5)
    assert _feed(AlarmMonitor(settings), rows) == [(5, "rewards_falling")]

    first = AlarmMonitor(settings)
    assert _feed(first, rows[:3]) == []
    resumed = AlarmMonitor(settings, json.loads(json.dumps(first.state())))
    assert _feed(resumed, rows[3:], start=4) == [(5, "rewards_falling")]


def test_monitor_ignores_steps_without_rewards_and_can_be_disabled():
    """RRHF logs no implicit rewards; a disabled monitor never fires."""
    monitor = AlarmMonitor(AlarmSettings(margin_window=1, falling_window=2))
    assert monitor.update(1, 0, {"ranking_loss": 1.0}) == []
    assert monitor.margins == []
    off = AlarmMonitor(AlarmSettings(enabled=False, margin_window=1, falling_window=2))
    assert _feed(off, [(0.0, 0.0), (-5.0, -9.0), (-9.0, -20.0)]) == []
