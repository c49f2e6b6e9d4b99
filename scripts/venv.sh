#!/usr/bin/env bash
# Create (once) the project's virtual environment in .venv and install a locked requirement set
# into it. Sourced by serve.sh and test.sh with LOCK set to a file under requirements/.
# Works where the system python3 refuses `pip install` (PEP 668) and lacks venv: as root on Debian
# it installs python3-venv first. Update the locks with: bash scripts/lock.sh
set -euo pipefail
VENV="${FINDER_VENV:-$PWD/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3-venv >/dev/null
    else
      echo "python3 has no venv module: install python3-venv (Debian) and run again" >&2
      exit 2
    fi
  fi
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --root-user-action=ignore --disable-pip-version-check \
  -r "$LOCK"
"$VENV/bin/python" -m pip install -q --root-user-action=ignore --disable-pip-version-check \
  --no-deps ${EDITABLE:+-e} .
export PATH="$VENV/bin:$PATH"
