#!/usr/bin/env bash
# Set up and open the dashboard on the bundled synthetic cohort (http://localhost:8501).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/streamlit run app.py --server.address localhost --server.port "${PORT:-8501}" "$@"
