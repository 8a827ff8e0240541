#!/usr/bin/env bash
# Create (or reuse) .venv and install alignkit with its dev tools into it.
#
# torch comes first and pinned to the CPU build when none is installed: the
# package itself only asks for a range, and a bare range with no torch present
# makes pip pull the newest CUDA build (several GB). GPU users install their
# CUDA build of torch into .venv before running this script; it is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: alignkit needs Python >= 3.11 (found: $("$PY" --version 2>&1))." >&2
    echo "setup: set PYTHON=/path/to/python3.11 and run again." >&2
    exit 2
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python

if ! "$VPY" -c 'import torch' 2>/dev/null; then
    echo "setup: installing torch==2.13.0 (CPU build)" >&2
    "$VPY" -m pip install --quiet "torch==2.13.0"
fi

# The libraries' versions the suite was run with (scripts/constraints.txt), unless
# ALIGNKIT_UNPINNED=1 asks for the newest within pyproject.toml's ranges.
constraints=(-c scripts/constraints.txt)
if [ "${ALIGNKIT_UNPINNED:-0}" = 1 ]; then
    constraints=()
fi

# Reinstall only when the package metadata, the constraints or that choice changed.
stamp=.venv/.alignkit-installed
want=$({ cat pyproject.toml scripts/constraints.txt; echo "unpinned=${ALIGNKIT_UNPINNED:-0}"; } \
    | "$VPY" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$VPY" -c 'import alignkit' 2>/dev/null; then
    echo "setup: installing alignkit and its dependencies into .venv" >&2
    "$VPY" -m pip install --quiet -e ".[dev]" ${constraints[@]+"${constraints[@]}"}
    echo "$want" > "$stamp"
fi
