"""The memory plan a training command prints before it loads anything.

The main process plans the run from its resolved config (see
:mod:`alignkit.plan.from_config`), prints two lines on stderr (the peak
against the device's memory, and the largest parts of the peak) and records
them as a ``plan`` event. When the peak exceeds the device's memory it warns,
naming the figures and the planner's top suggestion, and training goes on.
The plan is advice: when it cannot be made, one line says why and the run
continues.
"""

from __future__ import annotations

import click

from alignkit.errors import AlignkitError
from alignkit.plan.planner import Plan, gib
from alignkit.plan.render import LABELS

LARGEST_PARTS = 3


def announce_plan(cfg, command: str, run) -> Plan | None:
    """Plan ``cfg``'s run, print it and log it in ``run``; ``None`` when off or impossible.

    Never raises (besides ``KeyboardInterrupt``): whatever goes wrong is
    printed as the reason the plan was skipped.
    """
    from alignkit.train.processes import process_state

    state = process_state()
    if not cfg.train.plan or not state.is_main_process:
        return None
    try:
        plan = plan_run(cfg, command, state.num_processes)
        for line in plan_lines(plan):
            click.echo(line, err=True)
        _log(run, "plan", plan.summary(), **plan_fields(plan))
        if not plan.fits:
            message = over_memory_warning(plan)
            click.echo(f"warning: {message}", err=True)
            _log(run, "warning", message)
    except Exception as exc:  # the plan is advice: it must never stop the run
        reason = str(exc) if isinstance(exc, AlignkitError) else f"{type(exc).__name__}: {exc}"
        click.echo(f"plan: skipped ({reason})", err=True)
        _log(run, "plan", f"skipped: {reason}", skipped=True)
        return None
    return plan


def plan_run(cfg, command: str, processes: int = 1, device=None) -> Plan:
    """The plan of ``cfg`` on ``device`` (by default where this process trains)."""
    from alignkit.plan.from_config import plan_inputs, training_device
    from alignkit.plan.planner import make_plan

    vocab = None
    if cfg.model.init_from_config is not None:  # embeddings sized to the tokenizer
        from alignkit.train.models_setup import tokenizer_for

        vocab = len(tokenizer_for(cfg.model))
    inputs = plan_inputs(cfg, command, vocab_size=vocab, processes=processes)
    return make_plan(inputs.model, inputs.settings, device or training_device(processes),
                     reward_model=inputs.reward_model)


def plan_lines(plan: Plan) -> list[str]:
    """The summary line, then the peak phase and its largest parts."""
    parts = sorted(((b, name) for name, b in plan.memory.components.items() if b > 0),
                   reverse=True)[:LARGEST_PARTS]
    listed = ", ".join(f"{LABELS[name]} {gib(b)}" for b, name in parts)
    return [plan.summary(),
            f"plan: peak at the {plan.memory.peak_phase} phase: {listed} "
            "(alignkit plan shows every part and phase)"]


def over_memory_warning(plan: Plan) -> str:
    """What exceeds what, and the planner's top suggestion."""
    text = (f"the predicted peak {gib(plan.total)} exceeds the {gib(plan.device.memory)} of "
            f"{plan.device.name}")
    if not plan.suggestions:
        return text + "; the planner knows no change that lowers it"
    top = plan.suggestions[0]
    fit = "fits" if top.fits else "still does not fit"
    return (f"{text}; the planner's top suggestion: {top.change} ({top.effect}): peak "
            f"{gib(top.total)}, {fit}")


def plan_fields(plan: Plan) -> dict:
    """The plan's figures as event fields, in bytes: the peak (the sum of its parts), the
    device runtime's own memory, and the device memory their sum is compared with."""
    fields = {"method": plan.settings.method, "reference": plan.settings.reference_mode,
              "peak_phase": plan.memory.peak_phase, "peak_bytes": plan.peak,
              "runtime_bytes": plan.device.runtime, "device": plan.device.name,
              "device_memory_bytes": plan.device.memory,
              "fits": plan.fits}
    fields.update({f"{name}_bytes": b for name, b in plan.memory.components.items() if b > 0})
    return fields


def _log(run, kind: str, message: str, **data) -> None:
    if run is not None:
        run.log_event(kind, message, **data)
