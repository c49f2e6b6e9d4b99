#!/usr/bin/env bash
# Re-resolve the locked requirement sets from pyproject.toml with uv's pip-compile. Run it after
# changing dependencies (tests/test_lock.py fails while a lock no longer satisfies pyproject.toml);
# pass --upgrade to move every pin to the newest release, or --upgrade-package NAME for one.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements/test.lock.txt EDITABLE=1 source scripts/venv.sh
python -m pip install -q --root-user-action=ignore uv==0.13.9
args=(pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-unknown-linux-gnu
      --native-tls --quiet "$@")
uv "${args[@]}" -o requirements/serve.lock.txt
uv "${args[@]}" --extra test --extra china -o requirements/test.lock.txt
