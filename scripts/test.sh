#!/usr/bin/env bash
# Install everything the tests need (Debian + Python packages) and run the whole suite.
# Used by README's second command and by .ci/run. Runs as root on Debian 12 with Python 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
DEBS=(chromium postgresql-15-postgis-3 poppler-utils fonts-noto-cjk wrk)
if ! dpkg -s "${DEBS[@]}" >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${DEBS[@]}" >/dev/null
fi
python3 -m pip install -q --root-user-action=ignore -e ".[test]"
python3 -m ruff check .
python3 -m pytest -q "$@"
