"""Which process this is, in a run launched with ``accelerate launch`` or ``torchrun``."""

from __future__ import annotations


def process_state():
    """accelerate's shared process state, on CPU when no GPU is present.

    It must be created with ``cpu=True`` on a CPU-only machine: without it a
    multi-process launch is taken for a single process, and every process
    would act as the main one.
    """
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def end_process_group() -> None:
    """Shut down the distributed process group, if this process started one.

    Left to interpreter exit, gloo's threads are sometimes torn down while
    still joinable and the process aborts (``terminate called without an
    active exception``) after the run has finished. Does not import torch
    when the command never did.
    """
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.distributed.is_available():
        return
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
