"""Benchmark a service worker's start-up and memory, and what a second worker adds.

One command::

    python bench/startup.py                     # 1,000,000 facilities
    python bench/startup.py --quick             # 100,000 facilities
    python bench/startup.py --code /tmp/main    # the same measurement of another checkout

Builds (once, kept in ``--store-dir``) a GeoPackage store of synthetic facilities
(:func:`geodata.sample.sample_frame`), then starts ``uvicorn api.app:create_app --factory`` (one
worker, the production entry point) of the code in ``--code`` (default: this checkout) over it
and measures

* **first answer**: the time from starting the process to its first answered
  ``GET /nearest`` (the process imports the service, reads or maps the facilities, builds the
  index and answers), three cases: a *cold* worker (a fresh table directory: it reads the
  store and writes the table file), a *warm* worker (the table file of the store's change
  counter exists: it maps it), and a *second* worker started while the warm one runs;
* **memory** of each worker after its first answer, from ``/proc/PID/smaps_rollup``: RSS,
  PSS (shared pages divided among the processes that map them) and USS (private pages:
  what the process alone holds). What a second worker adds is its USS, and the growth of
  the two workers' PSS sum over the first worker's PSS alone.

The reference is the code of another checkout measured by the same command (``--code``):
export it with ``git archive main | tar -x -C /tmp/main``. Code without the table file ignores
``FINDER_TABLE_DIR``, so its warm and cold cases are the same.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live_server import ServerProcess, service_command  # noqa: E402

QUERY = "/nearest?lon=121.4737&lat=31.2304&k=5"
#: Facilities imported into a new benchmark store; more are shifted copies of these.
BASE = 100_000
TIMEOUT_S = 600.0


def build_store(path: Path, total: int) -> None:
    """A GeoPackage store of ``total`` synthetic facilities (kept for the next run).

    Up to :data:`BASE` facilities come from :func:`geodata.sample.sample_frame` through the
    store's import; beyond, copies of them shifted east by 20 m per copy (new ids) are added
    in SQL, which takes seconds instead of the import's minutes.
    """
    from geodata.sample import sample_frame
    from geodata.schema import COLUMNS
    from geodata.store import GeoPackageStore

    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    base = min(total, BASE)
    store = GeoPackageStore(tmp)
    try:
        store.upsert_frame(sample_frame(base), actor="bench")
    finally:
        store.close()
    rest = ", ".join(f'"{c}"' for c in COLUMNS if c not in ("id", "lon"))
    with contextlib.closing(sqlite3.connect(tmp)) as con, con:
        for copy in range(1, -(-total // base)):
            con.execute(
                f'INSERT INTO facilities (geom, "id", "lon", {rest}) '
                f"SELECT geom, id || '-c{copy}', lon + {copy} * 2e-4, {rest} FROM facilities "
                f"WHERE fid <= ? LIMIT ?",
                (base, min(base, total - copy * base)),
            )
    tmp.rename(path)


def smaps(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of a process, MB (``/proc/PID/smaps_rollup``)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    uss = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"] / 1024, "pss": fields["Pss"] / 1024, "uss": uss / 1024}


def _worker(code: Path, env: dict[str, str], log: Path, timeout_s: float) -> ServerProcess:
    """One worker of the code in ``code``, ready once it answers ``/nearest``."""
    return ServerProcess(
        env,
        command=lambda port: [*service_command(port), "--app-dir", str(code)],
        ready=QUERY,
        timeout_s=timeout_s,
        log=log,
    )


def _measured(server: ServerProcess) -> dict[str, float]:
    assert server.process is not None
    return {"first_s": server.ready_s, **smaps(server.process.pid)}


def measure(
    code: Path, store: Path, work: Path, *, cold: bool = True, timeout_s: float = TIMEOUT_S
) -> dict[str, dict[str, float]]:
    """First-answer time and memory of a cold (unless ``cold`` is false), a warm and a second
    worker."""
    table_dir = work / "tables"
    shutil.rmtree(table_dir, ignore_errors=True)
    env = {
        "FINDER_STORE": str(store),
        "FINDER_TABLE_DIR": str(table_dir),
        "FINDER_LOG_LEVEL": "WARNING",
        "FINDER_INDEX_POLL_S": "1",
    }
    out: dict[str, dict[str, float]] = {}
    if cold:
        with (first := _worker(code, env, work / "cold.log", timeout_s)):
            out["cold"] = _measured(first)
    with (warm := _worker(code, env, work / "warm.log", timeout_s)):
        out["warm"] = _measured(warm)
        with (second := _worker(code, env, work / "second.log", timeout_s)):
            out["second"] = _measured(second)
            out["warm_with_second"] = smaps(warm.process.pid)  # type: ignore[union-attr]
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facilities", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 facilities")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout to measure")
    parser.add_argument("--store-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--no-cold", action="store_true", help="skip the cold worker (code without table files)"
    )
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per worker")
    args = parser.parse_args(argv)
    total = 100_000 if args.quick else args.facilities
    store = args.store_dir / f"bench-startup-{total}.gpkg"
    if not store.exists():
        print(f"building a store of {total:,} facilities in {store} ...", flush=True)
        build_store(store, total)
    code = args.code.resolve()
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"code: {code}; {total:,} facilities; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        result = measure(code, store, Path(tmp), cold=not args.no_cold, timeout_s=args.timeout)
    print(f"{'worker':<28}{'first answer s':>15}{'RSS MB':>9}{'PSS MB':>9}{'USS MB':>9}")
    for name, label in (
        ("cold", "cold (reads the store)"),
        ("warm", "warm (table file exists)"),
        ("second", "second, beside the warm one"),
        ("warm_with_second", "warm, with the second"),
    ):
        row = result.get(name)
        if row is None:
            continue
        first = f"{row['first_s']:.1f}" if "first_s" in row else ""
        print(f"{label:<28}{first:>15}{row['rss']:>9.0f}{row['pss']:>9.0f}{row['uss']:>9.0f}")
    added = result["warm_with_second"]["pss"] + result["second"]["pss"] - result["warm"]["pss"]
    print(
        f"a second worker adds {result['second']['uss']:.0f} MB private (USS), "
        f"{added:.0f} MB to the PSS sum"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
