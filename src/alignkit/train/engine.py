"""The shared, boring part of every training loop, called (never inherited) by each loop.

It owns the accelerator, the optimiser and schedule, gradient accumulation
across processes, clipping, the NaN guard, checkpoints and resume, metric
rows (also sent to the experiment trackers of ``train.trackers``) and the
progress bar. A loop reads top to bottom::

    engine = Engine(cfg.train, cfg.optim, run)
    model = engine.prepare(model)
    for plan in engine.plans(len(dataset)):
        batches = [collate(rows(idx)) for idx in plan.micro_batches]
        total = engine.global_sum(sum(count(b) for b in batches))
        for i, batch in enumerate(batches):
            with engine.accumulating(model, last=i == len(batches) - 1):
                loss_sum, metrics = compute(batch)
                engine.backward(loss_sum / total)
        engine.finish_step(metrics, tokens=...)
    engine.close()
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

import torch

from alignkit.errors import AlignkitError, ConfigError
from alignkit.rundir import RunDir
from alignkit.train.allocator import keep_freed_memory
from alignkit.train.backward_update import UpdateInBackward
from alignkit.train.checkpoint import (
    TrainState,
    clean_partial_checkpoints,
    complete_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from alignkit.train.memory import peak_memory_mb
from alignkit.train.optim import allocate_states, build_optimizer, build_scheduler
from alignkit.train.order import StepPlan, plan_steps, steps_per_epoch
from alignkit.train.progress import Progress
from alignkit.train.trackers import TRACKER_DIR, check_trackers, scalars


class TrainingDiverged(AlignkitError):
    """The loss or gradients stayed NaN/Inf for too many steps in a row."""


def allow_precision(mixed: str) -> None:
    """Let this process's next ``Accelerator`` take ``mixed`` as its mixed precision.

    accelerate keeps one state per process and refuses a second precision, so
    a bf16 run after an fp32 one in the same process (a pipeline, a notebook)
    would fail. Each run's precision is its own: the per-run state is cleared
    when it differs; the process group and device (``PartialState``) stay.
    """
    from accelerate.state import AcceleratorState

    current = AcceleratorState._shared_state.get("_mixed_precision")
    if current is not None and current != mixed:
        AcceleratorState._reset_state(reset_partial_state=False)


class Engine:
    """Optimiser, accumulation, precision, checkpoints, metrics and progress for one run."""

    def __init__(self, train, optim, run: RunDir, *, accelerator=None) -> None:
        from accelerate import Accelerator

        self.train, self.optim, self.run = train, optim, run
        self.trackers = list(train.trackers)
        check_trackers(self.trackers)
        tracking = {"log_with": self.trackers, "project_dir": run.path / TRACKER_DIR} \
            if self.trackers else {}
        mixed = "bf16" if train.precision == "bf16" else "no"
        if accelerator is None:
            allow_precision(mixed)
        self.accelerator = accelerator or Accelerator(
            mixed_precision=mixed, cpu=not torch.cuda.is_available(), **tracking)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.state = TrainState()
        self.total_steps = 0
        self._bad_steps = 0
        self._last_log = (time.perf_counter(), 0)
        self.progress: Progress | None = None
        self.in_backward: UpdateInBackward | None = None

    # -- set-up -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def prepare(self, model: torch.nn.Module, n_examples: int) -> torch.nn.Module:
        """Build the optimiser over trainable parameters, wrap for the accelerator, resume."""
        t, o = self.train, self.optim
        global_batch = t.batch_size * t.grad_accum * self.accelerator.num_processes
        per_epoch = steps_per_epoch(n_examples, global_batch)
        self.total_steps = t.max_steps or per_epoch * t.epochs
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise AlignkitError("the model has no trainable parameters")
        self.optimizer = build_optimizer(params, lr=o.lr, weight_decay=o.weight_decay,
                                         betas=tuple(o.betas), eps=o.eps)
        self.scheduler = build_scheduler(self.optimizer, schedule=o.schedule,
                                         warmup_steps=o.warmup_steps,
                                         total_steps=self.total_steps)
        model, self.optimizer = self.accelerator.prepare(model, self.optimizer)
        allocate_states(self.optimizer.optimizer)
        self.model = model
        if getattr(o, "update_in_backward", False):
            if self.accelerator.num_processes > 1:
                raise ConfigError("optim.update_in_backward runs in a single process only: "
                                  "each process would update before gradients are averaged")
            self.in_backward = UpdateInBackward(self.optimizer.optimizer,
                                                release_pages=self.device.type == "cpu")
        self._resume_if_any()
        self._start_trackers()
        return model

    def _start_trackers(self) -> None:
        """Start the trackers; a resumed run hides what it logged after its checkpoint."""
        if not self.trackers:
            return
        # Rows after the checkpoint's step were logged by the run that was killed.
        purge = {"tensorboard": {"purge_step": self.state.step + 1}}
        self.accelerator.init_trackers(self.run.path.name,
                                       init_kwargs=purge if self.run.resumed else {})

    def _resume_if_any(self) -> None:
        if self.is_main:
            clean_partial_checkpoints(self.run.checkpoints)
        found = complete_checkpoints(self.run.checkpoints)
        if not found:
            return
        raw = self.accelerator.unwrap_model(self.model)
        self.state = load_checkpoint(found[-1], raw, self.optimizer, self.scheduler)
        if self.is_main:
            self.run.rewind_metrics(self.state.step)
        self.event("resume", f"resumed from {found[-1].name} at step {self.state.step}")

    def plans(self, n_examples: int) -> Iterator[StepPlan]:
        """The remaining optimiser steps of this process, from the current state."""
        t = self.train
        self.progress = Progress(self.total_steps, self.state.step, enabled=self.is_main)
        self._last_log = (time.perf_counter(), self.state.tokens_seen)
        yield from plan_steps(
            n_examples, batch_size=t.batch_size, grad_accum=t.grad_accum,
            num_processes=self.accelerator.num_processes,
            process_index=self.accelerator.process_index, seed=t.seed,
            total_steps=self.total_steps, start_step=self.state.step)

    # -- inside a step ------------------------------------------------------
    def global_sum(self, value: float | int) -> float:
        """Sum a per-process number over all processes (e.g. the tokens of the global batch)."""
        if self.accelerator.num_processes == 1:
            return float(value)
        t = torch.tensor(float(value), device=self.device)
        return float(self.accelerator.reduce(t, reduction="sum"))

    @contextlib.contextmanager
    def accumulating(self, model, *, last: bool):
        """Skip the gradient all-reduce on every micro-batch but the step's last."""
        ctx = contextlib.nullcontext() if last else self.accelerator.no_sync(model)
        with ctx, self.accelerator.autocast():
            yield

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss``, already normalised over the whole global batch.

        DDP averages gradients over processes; multiplying by the process count
        undoes that, so the gradient is that of one big batch. Under
        ``optim.update_in_backward`` a non-finite loss is not backpropagated, so
        that it updates nothing.
        """
        if self.in_backward is not None and not torch.isfinite(loss.detach()):
            return
        self.accelerator.backward(loss * self.accelerator.num_processes)

    def evaluation_due(self) -> bool:
        """Whether to evaluate after the step just finished (every eval_every, and the last)."""
        step, every = self.state.step, self.train.eval_every
        return step == self.total_steps or (every > 0 and step % every == 0)

    def log_evaluation(self, metrics: dict[str, float]) -> None:
        """Write held-out figures as their own metrics row for the current step."""
        if self.is_main:
            self.run.log_metrics(self.state.step, **metrics)
            self._track(metrics)
        if self.progress is not None and "eval_loss" in metrics:
            self.progress.note(f"step {self.state.step}: eval_loss {metrics['eval_loss']:.4f}")

    def update(self, loss: float) -> float | None:
        """Clip, guard against NaN and apply the accumulated gradients; the grad norm.

        ``finish_step`` calls this; a loop that makes several optimiser updates
        within one step (online RL: PPO epochs over minibatches of one rollout
        batch) calls it after each and then ``finish_step(..., update=False)``,
        so the step (schedule, counters, metrics, checkpoint) still ends once.

        Returns:
            The gradient norm before clipping, or ``None`` when the update was
            skipped because the loss or the gradients were not finite.
        """
        if self.in_backward is not None:
            return self._finish_update_in_backward(loss)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        max_norm = self.optim.max_grad_norm or float("inf")
        grad_norm = float(self.accelerator.clip_grad_norm_(params, max_norm))
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self._skip_bad_step(loss, grad_norm)
            return None
        self._bad_steps = 0
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def _finish_update_in_backward(self, loss: float) -> float | None:
        """:meth:`update` when backward already applied the gradients (as far as finite)."""
        grad_norm = self.in_backward.finish()
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self._skip_bad_step(loss, grad_norm)
            return None
        self._bad_steps = 0
        return grad_norm

    def finish_step(self, metrics: dict[str, float], *, tokens: int, loss: float,
                    update: bool = True) -> bool:
        """Update (unless the loop already did), log and checkpoint. False if skipped."""
        if update:
            grad_norm = self.update(loss)
            if grad_norm is None:
                return False
            metrics = dict(metrics, loss=loss, grad_norm=grad_norm)
        else:
            metrics = dict(metrics, loss=loss)
        self.scheduler.step()
        self.state.step += 1
        self.state.tokens_seen += int(self.global_sum(tokens))
        self._log(metrics)
        if self.state.step % self.train.save_every == 0 or self.state.step == self.total_steps:
            self.checkpoint()
        return True

    def _skip_bad_step(self, loss: float, grad_norm: float) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._bad_steps += 1
        partly = " (tensors with finite gradients were already updated during backward)" \
            if self.in_backward is not None and math.isfinite(loss) else ""
        self.event("nan", f"non-finite loss ({loss}) or gradient norm ({grad_norm}) at step "
                   f"{self.state.step + 1}; step skipped{partly}", loss=loss,
                   grad_norm=grad_norm)
        if self._bad_steps >= self.train.nan_abort_after:
            raise TrainingDiverged(
                f"loss or gradients were NaN/Inf for {self._bad_steps} steps in a row; stopped. "
                f"The last checkpoint in {self.run.checkpoints} is intact: lower optim.lr, or "
                "check the data, and run again with --resume.")

    # -- outputs ------------------------------------------------------------
    def _log(self, metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        last_time, last_tokens = self._last_log
        rate = (self.state.tokens_seen - last_tokens) / max(now - last_time, 1e-9)
        if self.progress is not None:
            self.progress.update(self.state.step, loss=metrics["loss"], tokens_per_s=rate)
        if self.state.step % self.train.log_every and self.state.step != self.total_steps:
            return
        self._last_log = (now, self.state.tokens_seen)
        if self.is_main:
            row = dict(metrics, lr=self.scheduler.get_last_lr()[0], tokens_per_s=rate,
                       tokens_seen=self.state.tokens_seen, peak_memory_mb=peak_memory_mb())
            self.run.log_metrics(self.state.step, **row)
            self._track(row)

    def _track(self, row: dict) -> None:
        """Send a metrics row's numbers to the trackers, at the row's step."""
        if self.trackers:
            self.accelerator.log(scalars(row), step=self.state.step)

    def event(self, kind: str, message: str, **data) -> None:
        """Record an alarm or notice in events.jsonl and on the console."""
        if self.is_main:
            self.run.log_event(kind, message, step=self.state.step, **data)
            if self.progress is not None:
                self.progress.note(f"[{kind}] {message}")

    def checkpoint(self) -> None:
        """Write a checkpoint of the current state (main process)."""
        self.accelerator.wait_for_everyone()
        if self.is_main:
            raw = self.accelerator.unwrap_model(self.model)
            save_checkpoint(self.run.checkpoints, self.state, raw, self.optimizer,
                            self.scheduler, keep_last=self.train.keep_last)
        self.accelerator.wait_for_everyone()

    def close(self) -> None:
        """Stop the progress bar, take off update-in-backward hooks, close the trackers' files."""
        if self.progress is not None:
            self.progress.close()
        if self.in_backward is not None:
            self.in_backward.remove()
        # Not accelerator.end_training(): it also ends the process group, which saving
        # final/ still waits on.
        for tracker in self.accelerator.trackers:
            tracker.finish()
