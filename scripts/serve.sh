#!/usr/bin/env bash
# Install the service (locked versions, in .venv) and serve the bundled Shanghai SAMPLE data on
# http://127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements/serve.lock.txt source scripts/venv.sh
exec finder serve --host 127.0.0.1 --port "${PORT:-8000}"
