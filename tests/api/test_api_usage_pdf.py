"""The printed usage table (``GET /usage.pdf``, ``finder usage --out F.pdf``) on a store of
each backend: its facility rows and total, read back with pdftotext, equal the ``/usage`` CSV;
a facility without a counting device is printed as such, not as zero visits."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from api_support import Live
from events_support import store_env, wait_for_facility
from test_cli import finder

from finder.hours import local_today
from geodata.events import NewEvent, event_log
from geodata.schema import Facility

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils missing")

CHONGMING = "310151"
STATIONS = {  # id: (name, entries); None: no counting device
    "use-pdf-1": ("崇明测试驿站甲", 5),
    "use-pdf-2": ("崇明测试驿站乙", 3),
    "use-pdf-3": ("崇明测试驿站丙", None),
}


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "usage.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return done.stdout


def _line(text: str, start: str) -> list[str]:
    """The cells of the first line of ``text`` holding ``start``, split on runs of spaces."""
    for line in text.splitlines():
        if start in line:
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no line with {start!r} in:\n{text}")


def test_printed_usage_rows_and_total_equal_the_csv(edit_live: Live, tmp_path: Path) -> None:
    store = edit_live.store
    log = event_log(store)
    now = dt.datetime.now(dt.UTC)
    events = []
    for n, (fid, (name, entries)) in enumerate(STATIONS.items()):
        store.create(
            Facility(
                id=fid,
                name=name,
                kind="worker_station",
                lon=121.40 + 0.01 * n,
                lat=31.62,
                adcode=CHONGMING,
                district="崇明区",
                opening_hours="24/7",
            ),
            actor="test",
        )
        if entries is not None:
            log.add_device(f"dev-{fid}", fid, "ab" * 32)
            events += [
                NewEvent(fid, f"dev-{fid}", "entry", now - dt.timedelta(minutes=i), f"{fid}-{i}")
                for i in range(entries)
            ]
    log.append(events, prune_before=now - dt.timedelta(days=1))
    period = {
        "district": CHONGMING,
        "from": (local_today() - dt.timedelta(days=1)).isoformat(),
        "to": local_today().isoformat(),
    }
    with edit_live.client() as client:
        wait_for_facility(client, "use-pdf-3", 121.42, 31.62)
        table = client.get("/usage", params=period)
        pdf = client.get("/usage.pdf", params=period)
        bad = client.get("/usage.pdf", params={**period, "from": "2026-12-31", "to": "2026-12-01"})
    assert table.status_code == 200 and pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert bad.status_code == 400
    visits: Counter[str] = Counter()
    for row in csv.DictReader(io.StringIO(table.text.lstrip("\ufeff"))):
        visits[row["name"]] += int(row["visits"])
    assert visits["崇明测试驿站甲"] == 5 and visits["崇明测试驿站乙"] == 3

    cli_pdf = tmp_path / "cli.pdf"
    done = finder(
        "usage",
        "--district",
        CHONGMING,
        "--from",
        period["from"],
        "--to",
        period["to"],
        "--out",
        str(cli_pdf),
        env=store_env(store),
    )
    assert done.returncode == 0, done.stderr
    for text in (_text(pdf.content, tmp_path), _text(cli_pdf.read_bytes(), tmp_path)):
        assert f"崇明区（{CHONGMING}）· {period['from']} 至 {period['to']}（2 天）" in text
        for name, count in visits.items():
            cells = _line(text, name)
            assert cells[4] == f"{count:,}", cells  # 序号 设施 类型 计数天数 到访合计 ...
        assert _line(text, "崇明测试驿站丙")[3:] == ["无计数设备", "—", "—", "—"]
        total = _line(text, "合计（")
        assert total[0] == f"合计（{len(visits)} 个有计数设备）"
        assert total[2] == f"{sum(visits.values()):,}"
        assert "仅计对公众开放的设施" in text
