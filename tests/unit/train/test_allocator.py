"""glibc's malloc keeps freed memory for reuse in a CPU training process."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from alignkit.train import allocator

GLIBC = platform.libc_ver()[0] == "glibc"

PROBE = textwrap.dedent("""
    import resource, sys, torch
    from alignkit.train.allocator import keep_freed_memory
    kept = keep_freed_memory() if sys.argv[1] == "keep" else False

    def step():
        held = [torch.ones(2 << 20) for _ in range(4)]  # four 8 MiB activations, then freed
        del held

    faults = []
    for _ in range(10):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        step()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(kept, *faults)
""")


def _faults(mode: str, **env) -> tuple[bool, list[int]]:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                          env=dict(os.environ, **env), check=True)
    kept, *faults = done.stdout.split()
    return kept == "True", [int(n) for n in faults]


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_freed_activations_are_reused_without_page_faults():
    """Steps that each allocate and free 32 MiB: once the heap has grown, kept memory serves
    every later step without a page fault. (With glibc's defaults, four of six runs on the
    build machine kept faulting 4,064 to 8,160 pages in every step.)"""
    kept, faults = _faults("keep")
    assert kept
    assert sum(faults[5:]) < 100


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_a_malloc_option_in_the_environment_is_left_alone():
    assert not _faults("keep", MALLOC_TRIM_THRESHOLD_="131072")[0]


def test_which_environments_set_malloc_options():
    assert not allocator.user_set_malloc({})
    assert not allocator.user_set_malloc({"GLIBC_TUNABLES": "glibc.rtld.nns=2"})
    assert allocator.user_set_malloc({"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert allocator.user_set_malloc({"MALLOC_ARENA_MAX": "2", "MALLOC_TOP_PAD_": "0"})
    assert allocator.user_set_malloc({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"})


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(allocator, "_kept", False)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("musl", ""))
    assert not allocator.keep_freed_memory()
