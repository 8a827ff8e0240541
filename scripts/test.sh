#!/usr/bin/env bash
# Set up .venv (see setup.sh) and run the whole default test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# The report's browser test renders it in headless Chromium. As root with apt-get,
# install Chromium and its driver when they are missing; otherwise that test skips.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
        && ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends chromium chromium-driver; } >/dev/null 2>&1; then
        echo "test: could not install chromium and chromium-driver; the browser test will skip" >&2
    fi
fi

exec .venv/bin/python -m pytest "$@"
