#!/usr/bin/env bash
# Set up .venv (see setup.sh) and run the main job: `alignkit demo`, the lab
# pipeline from a randomly initialised model to an aligned one and a report.
# Arguments go to `alignkit demo` (e.g. --seed 3, -o runs/demo-3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/alignkit demo "$@"
