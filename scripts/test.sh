#!/usr/bin/env bash
# Install everything the tests need (Debian packages; the locked Python packages in .venv) and run
# the whole suite. Used by README's second command and by .ci/run. Runs as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
DEBS=(chromium postgresql-15-postgis-3 poppler-utils fonts-noto-cjk wrk python3-venv)
if ! dpkg -s "${DEBS[@]}" >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${DEBS[@]}" >/dev/null
fi
LOCK=requirements/test.lock.txt EDITABLE=1 source scripts/venv.sh
python -m ruff check .
python -m pytest -q "$@"
