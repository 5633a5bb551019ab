#!/usr/bin/env bash
# Set up and run the whole test suite: lint, unit, property, AppTest and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian chromium for the browser tests..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/mypy --config-file mypy.ini  # lenient type check (mypy.ini): zero errors
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
# Unit, property and AppTest tests on both cores; the browser tests after them, one at a
# time (each drives a Streamlit server and Chromium, which need the cores to themselves).
.venv/bin/python -m pytest -q -n 2 -m "not browser"
exec .venv/bin/python -m pytest -q -m browser
