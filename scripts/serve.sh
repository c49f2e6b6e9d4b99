#!/usr/bin/env bash
# Install the service and serve the bundled Shanghai SAMPLE data on http://127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --root-user-action=ignore .
exec finder serve --host 127.0.0.1 --port "${PORT:-8000}"
