"""Ending the distributed process group before the interpreter exits."""

import torch
import torch.distributed as dist

from alignkit.train.processes import end_process_group


def test_an_initialised_group_is_destroyed(tmp_path):
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    assert dist.is_initialized()
    total = torch.ones(2)
    dist.all_reduce(total)
    end_process_group()
    assert not dist.is_initialized()
    end_process_group()  # nothing left to end: no error


def test_a_command_that_never_imported_torch_does_not_import_it(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from alignkit.train.processes import end_process_group; "
            "end_process_group(); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
