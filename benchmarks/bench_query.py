"""Benchmark the spatial queries over HTTP: locate and nearest (latency and req/s), a 5 km²
area summary in the densest part of the demo, and a 10,000-point batch locate.

The API runs under uvicorn (``--workers``) on a free 127.0.0.1 port against a database that
holds a demo (``GIS_BENCH_DATABASE_URL``, or a throw-away cluster loaded with ``--scale``).
Latency is measured one request at a time with a keep-alive client (median, p99); throughput
with ``wrk`` (C, Lua-rotated URLs) for ``--duration`` seconds, on the same machine as the
server — on a 2-core box the load generator takes part of the CPU, so the figures are a floor.
Writes ``benchmarks/query.md``.

    .venv/bin/python benchmarks/bench_query.py [--scale district|city] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
from benchdb import bench_user, demo_database

from gis_service.db.cluster import free_port
from gis_service.demo import loader

OUT = Path(__file__).with_name("query.md")


@contextmanager
def server(url: str, workers: int) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": url, "GIS_ENVIRONMENT": "test", "GIS_API_PUBLIC_URL": base}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "gis_service.api.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    app_path = os.environ.get("GIS_BENCH_APP_PATH")
    if app_path:  # run another checkout's code (the "previous" column) on the same data
        env["PYTHONPATH"] = app_path
    proc = subprocess.Popen(cmd, env=env, cwd=app_path or None)
    CPU_SOURCES.update(server=proc.pid, url=url)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            try:
                if httpx.get(base + "/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def sample(url: str, scope: str, n: int) -> dict[str, Any]:
    """Points on buildings of the scope, and the centre of the densest grid."""
    with psycopg.connect(loader.psycopg_conninfo(url)) as c:
        c.execute("SELECT setseed(0.42)")
        pts = c.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.geom) p FROM building b"
            " JOIN admin_division v ON v.code = b.admin_code WHERE %s = ANY(v.ancestors)"
            " ORDER BY random() LIMIT %s) s",
            (scope, n),
        ).fetchall()
        dense = c.execute(
            "SELECT ST_X(ST_Centroid(g.geom)), ST_Y(ST_Centroid(g.geom)) FROM grid g"
            " JOIN admin_division v ON v.code = g.community_code"
            " WHERE g.valid_to IS NULL AND %s = ANY(v.ancestors)"
            " ORDER BY (SELECT count(*) FROM building b WHERE b.geom && ST_Expand(ST_Centroid(g.geom), 0.0115)) DESC LIMIT 1",
            (scope,),
        ).fetchone()
        counts = dict(
            c.execute(
                "SELECT 'buildings', count(*) FROM building UNION ALL SELECT 'grids', count(*) FROM grid"
            ).fetchall()
        )
    assert dense is not None
    return {
        "points": [(float(x), float(y)) for x, y in pts],
        "dense": (float(dense[0]), float(dense[1])),
        "counts": counts,
    }


def square_km2(lon: float, lat: float, km2: float) -> dict[str, Any]:
    half = math.sqrt(km2) * 1000 / 2
    dy = half / 110_574.0
    dx = half / (111_320.0 * math.cos(math.radians(lat)))
    ring = [
        [lon - dx, lat - dy],
        [lon + dx, lat - dy],
        [lon + dx, lat + dy],
        [lon - dx, lat + dy],
        [lon - dx, lat - dy],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def latencies(client: httpx.Client, urls: list[str], n: int) -> dict[str, float]:
    times = []
    for i in range(n):
        t = time.perf_counter()
        r = client.get(urls[i % len(urls)])
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code in (200, 404), r.text[:200]
    times.sort()
    return {
        "p50": statistics.median(times),
        "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
        "n": n,
    }


def _cpu_ticks(root: int) -> int:
    """CPU ticks of ``root``'s process tree, including children that exited meanwhile.

    The exited ones are in the parent's cutime/cstime once reaped: PostgreSQL backends that
    come and go (a pool churning connections) are counted too.
    """
    total = 0
    for pid in _tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        total += int(fields[13]) + int(fields[14])  # cutime, cstime (reaped children)
    return total


def _tree(root: int) -> set[int]:
    """``root`` and its descendants (the uvicorn supervisor and its workers)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except OSError:
                continue
    out, todo = {root}, [root]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in out]
        out.update(kids)
        todo.extend(kids)
    return out


def _postmaster(url: str) -> int:
    """The pid of the PostgreSQL server holding ``url`` (the parent of our backend)."""
    with psycopg.connect(loader.psycopg_conninfo(url), autocommit=True) as c:
        row = c.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        # Read while the backend lives (it exits when the connection closes).
        return int(Path(f"/proc/{row[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])


#: Seconds of unmeasured load before each wrk run.
WARMUP_S = 3
#: Set by main(): the server's pid and the database, so wrk() can charge CPU to requests.
CPU_SOURCES: dict[str, Any] = {}


def wrk(base: str, token: str, paths: list[str], seconds: int, connections: int) -> dict[str, Any]:
    """Throughput with wrk, and the CPU the server and PostgreSQL spent per request.

    CPU per request depends much less than req/s on how busy the shared machine is. The
    PostgreSQL figure is the whole server's (the bench database's cluster), wrk's is not
    counted anywhere.
    """
    app, db = CPU_SOURCES["server"], _postmaster(CPU_SOURCES["url"])
    # Warm-up (not measured): every worker connects its pool and keeps its ready parts.
    _wrk(base, token, paths, WARMUP_S, connections)
    app0, db0 = _cpu_ticks(app), _cpu_ticks(db)
    res = _wrk(base, token, paths, seconds, connections)
    tick = os.sysconf("SC_CLK_TCK")
    n = max(res["requests"], 1)
    res["app_ms"] = (_cpu_ticks(app) - app0) * 1000 / tick / n
    res["db_ms"] = (_cpu_ticks(db) - db0) * 1000 / tick / n
    return res


def _wrk(base: str, token: str, paths: list[str], seconds: int, connections: int) -> dict[str, Any]:
    script = """
local paths = {{{}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], {{["Authorization"] = "Bearer {}"}})
end
""".format(", ".join(json.dumps(p) for p in paths), token)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        assert m is not None, out
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    done = re.search(r"(\d+) requests in", out)
    return {
        "requests": int(done.group(1)) if done else 0,
        "rps": rps,
        "p50": ms("50"),
        "p99": ms("99"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def direct(url: str, scope: str, pts: list[tuple[float, float]]) -> dict[str, Any]:
    """The same queries without HTTP or authentication: query functions on one connection."""
    import asyncio

    import numpy as np

    from gis_service.db.engine import make_async_engine
    from gis_service.domain.scope import Principal
    from gis_service.query import layers, locate, nearby
    from gis_service.settings import load_settings
    from gis_service.types import Role

    who = Principal("bench", Role.commander, scope)

    async def run() -> dict[str, Any]:
        engine = make_async_engine(url, load_settings().db)
        out: dict[str, Any] = {}
        try:
            for name, call in (
                ("locate", lambda c, p: locate.locate_point(c, who, p)),
                ("nearest", lambda c, p: nearby.nearest(c, who, p, layers.get("shelters"), 5)),
            ):
                times = []
                async with engine.begin() as conn:
                    for i, p in enumerate(pts[:520]):
                        t = time.perf_counter()
                        await call(conn, p)
                        if i >= 20:
                            times.append((time.perf_counter() - t) * 1000)
                times.sort()
                out[name] = {"p50": statistics.median(times), "p99": times[int(len(times) * 0.99)]}
            xs = np.array([p[0] for p in pts[:10_000]])
            ys = np.array([p[1] for p in pts[:10_000]])
            async with engine.begin() as conn:
                t = time.perf_counter()
                await locate.locate_points(conn, who, xs, ys)
                out["batch_s"] = time.perf_counter() - t
        finally:
            await engine.dispose()
        return out

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=["district", "city"], default="district")
    ap.add_argument(
        "--scope",
        default=None,
        help="admin code of the bench user (default: the demo's county/city)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--out", type=Path, default=OUT, help="where to write the table")
    args = ap.parse_args()
    scope = args.scope or ("430200" if args.scale == "city" else "430204")
    with (
        demo_database(args.scale, "gis_bench_q") as url,
        bench_user(url, "commander", scope) as token,
        server(url, args.workers) as base,
    ):
        s = sample(url, scope, 10_000)
        pts = s["points"]
        locate = [f"/query/locate?lon={x:.6f}&lat={y:.6f}" for x, y in pts[:500]]
        nearest = [
            f"/query/nearest?lon={x:.6f}&lat={y:.6f}&layer=shelters&k=5" for x, y in pts[:500]
        ]
        headers = {"Authorization": f"Bearer {token}"}
        res: dict[str, Any] = {"counts": s["counts"], "load_before": os.getloadavg()}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for u in locate[:50] + nearest[:50]:
                client.get(u)
            res["me_seq"] = latencies(client, ["/me"], 300)
            res["locate_seq"] = latencies(client, locate, 1000)
            res["nearest_seq"] = latencies(client, nearest, 1000)
            area = {"geometry": square_km2(*s["dense"], 5.0)}
            times = []
            for _ in range(20):
                t = time.perf_counter()
                r = client.post("/query/area", json=area)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text[:300]
            totals = r.json()["totals"]
            res["area"] = {
                "median": statistics.median(times),
                "max": max(times),
                "buildings": totals["buildings"],
                "households": totals["buildings_households"],
                "grids": len(r.json()["grids"]),
            }
            batch = {"points": [[x, y] for x, y in pts[:10_000]]}
            times, cpu = [], []
            app, db = CPU_SOURCES["server"], _postmaster(url)
            for _ in range(3):
                t, ticks = time.perf_counter(), (_cpu_ticks(app), _cpu_ticks(db))
                r = client.post("/query/locate", json=batch)
                times.append(time.perf_counter() - t)
                cpu.append((_cpu_ticks(app) - ticks[0], _cpu_ticks(db) - ticks[1]))
                assert r.status_code == 200, r.text[:300]
            tick = os.sysconf("SC_CLK_TCK")
            res["batch"] = {
                "median_s": statistics.median(times),
                "n": r.json()["count"],
                "found": r.json()["found"],
                # CPU seconds of the warm runs (the 2nd and 3rd), app and PostgreSQL.
                "app_s": statistics.mean(a for a, _ in cpu[1:]) / tick,
                "db_s": statistics.mean(d for _, d in cpu[1:]) / tick,
            }
        res["direct"] = direct(url, scope, pts)
        res["me_wrk"] = wrk(base, token, ["/me"], args.duration, args.connections)
        res["locate_wrk"] = wrk(base, token, locate, args.duration, args.connections)
        res["nearest_wrk"] = wrk(base, token, nearest, args.duration, args.connections)
    res["load_after"] = os.getloadavg()
    write(res, args)
    print(json.dumps(res, indent=1))


#: The last committed run (6b4dbf6, quiet machine 04:03 UTC, load 1.6 / 2.3), before
#: locate's statement went through libpq directly; keyed like the rows.
PREVIOUS = {
    "me_seq": "median 2.5 ms, p99 4.5 ms",
    "me_wrk": "2242 req/s, p99 167.3 ms, CPU/request app 0.82 ms + PostgreSQL 0.01 ms",
    "locate_seq": "median 4.3 ms, p99 8.0 ms",
    "locate_wrk": "906 req/s, p50 33.4 ms, p99 126.7 ms, CPU/request app 1.13 ms + PostgreSQL 0.98 ms",
    "nearest_seq": "median 3.0 ms, p99 3.9 ms",
    "nearest_wrk": "1070 req/s, p50 28.2 ms, p99 61.8 ms, CPU/request app 1.06 ms + PostgreSQL 0.72 ms",
    "area": "median 63 ms, max 221 ms",
    "batch": "median 1.86 s; CPU per warm run app 0.58 s + PostgreSQL 2.28 s",
    "direct_locate": "median 4.5 ms, p99 6.7 ms",
    "direct_nearest": "median 1.8 ms, p99 2.9 ms",
    "direct_batch": "2.86 s",
}


#: The code just before this round's query statements (HEAD with locate/nearby/sqlparts/
#: layers of 863a46e: geometry KNN bounds and degree boxes) run by this script right before
#: the committed run, on the same database (GIS_BENCH_APP_PATH=<that tree>): like for like.
BASELINE_NOTE = "2de67a9 with the statements of 863a46e, load 8.2 / 7.4"
BASELINE = {
    "me_seq": "median 6.8 ms, p99 85.0 ms",
    "me_wrk": "616 req/s, p99 541.3 ms, CPU/request app 1.09 ms + PostgreSQL 0.01 ms",
    "locate_seq": "median 16.7 ms, p99 169.4 ms",
    "locate_wrk": "236 req/s, p50 117.5 ms, p99 550.0 ms, non-2xx 0, CPU/request app 1.79 ms + PostgreSQL 3.04 ms",
    "nearest_seq": "median 9.4 ms, p99 27.5 ms",
    "nearest_wrk": "330 req/s, p50 103.9 ms, p99 287.0 ms, non-2xx 0, CPU/request app 1.76 ms + PostgreSQL 0.76 ms",
    "area": "median 142 ms, max 561 ms",
    "batch": "median 6.62 s; CPU per warm run app 0.81 s + PostgreSQL 4.59 s",
    "direct_locate": "median 12.3 ms, p99 40.7 ms",
    "direct_nearest": "median 5.6 ms, p99 12.8 ms",
    "direct_batch": "9.56 s",
}


#: What changed between committed runs and how it was judged (written under the table).
HISTORY = [
    "## History",
    "",
    "- 03:00 UTC stop, read pool and fast-path CPU (after the 00:55 quiet run of 0471065,",
    "  which is the previous-run column). The read pool is twice the main pool (16",
    "  connections per worker, was 8): under wrk each worker has about 16 point queries in",
    "  flight, and with 8 connections half of them queued in psycopg_pool (a waiter, a timer",
    "  and a task each) and then needed feed rounds of their own. The locate statement text",
    "  is built once per area scope, one point's feed check follows its statement (no",
    "  gather, two tasks fewer), wgs84/cgcs2000 points are checked on plain floats, and a",
    "  query string without escapes is split without parse_qsl. Judged by CPU per request",
    "  on a busy box (load 5-11; the PostgreSQL cluster was shared with other benchmarks):",
    "  in-process, 16 concurrent `GET /query/locate` on the city demo, PostgreSQL CPU of",
    "  that app's own backends: read pool 8 -> 16, app 1.64-1.88 -> 1.00-1.36 ms and",
    "  PostgreSQL 1.02-1.22 -> 0.86-0.96 ms per request (feed rounds per request 0.45 ->",
    "  0.16); the smaller changes, on uvloop as uvicorn runs it, app 0.78-0.95 -> 0.67-0.90",
    "  ms. Over HTTP with this script's wrk set-up, old and new code interleaved, two runs:",
    "  app CPU per locate 2.15 / 3.62 -> 1.53 / 1.24 ms, per nearest 2.27 / 1.72 -> 1.45 /",
    "  1.01 ms (req/s at that load: locate 210 / 71 -> 324 / 395, nearest 189 / 358 -> 181",
    "  / 556). A full run at 03:00 UTC under load 9.5 / 10.4 (the `/me` floor 521 req/s,",
    "  2,741 when quiet) measured nothing about the goals and was not kept. Then: read",
    "  connections take the result's field names from libpq instead of psycopg's",
    "  description (a Column object per field per statement, a tenth of a 12-column",
    "  nearest in cProfile); in-process, 16 concurrent nearest k=5, app CPU median about",
    "  0.99 -> 0.84 ms (noisy: 0.80-1.21 -> 0.77-1.26 ms). HTTP A/B of the final code",
    "  against 6d72e5d at 03:18 UTC (load 6-7), app CPU per locate 1.67 / 1.74 -> 1.05 /",
    "  1.46 ms, per nearest 1.33 / 1.44 -> 1.00 / 1.09 ms (locate 437 / 416 -> 646 / 284",
    "  req/s, nearest 696 / 569 -> 712 / 655; the PostgreSQL figures were the cluster's,",
    "  shared with another benchmark, and are not quoted).",
    "- 05:40 UTC stop, locate's Python (after the 04:03 quiet run of 6b4dbf6, the next run's",
    "  previous-run column: 906 req/s, app 1.13 + PostgreSQL 0.98 ms per request). Where",
    "  the CPU goes, measured on the busy box (load 5-9): py-spy of one uvicorn worker",
    "  under wrk, psycopg's cursor path (query conversion, parameter dumpers, result",
    "  set-up) about 0.1 ms of Python per statement beside the libpq send itself; in the",
    "  statement (EXPLAIN ANALYZE of the generic plan, perf of its backend), a quarter of",
    "  the backend CPU is ExecutorStart of the 50-node plan, and the shelter probes are",
    "  half of the rest (removing them: 0.66 -> 0.34 ms). Kept: locate's one-point",
    "  statement goes straight through libpq (`ReadConnection.scalar_text`: prepared once",
    "  per connection, text parameters, one text value back) and `locate_point` no",
    "  longer wraps its point in numpy arrays. In-process A/B, 16 concurrent GET",
    "  /query/locate on the city demo, three interleaved pairs each: libpq path, app CPU",
    "  0.84 / 0.84 / 0.92 -> 0.65 / 0.72 / 0.83 ms per request; no numpy, 0.64 / 0.77 /",
    "  0.69 -> 0.55 / 0.71 / 0.67 ms. Tried and not kept (backend CPU per statement, min",
    "  of 7 interleaved rounds of 1,000 points): the nearest shelter settled from the two",
    "  sphere-nearest when the second is more than 1 % farther (the re-ranking scan",
    "  behind a one-time filter), 0.65 -> 0.76 ms, as the extra plan nodes cost more to",
    "  start than the skipped scan; the any-shelter bound through the geometry index, or",
    "  taken from the nearest open shelter, no change; `CASE` around the area test so",
    "  the planner walks the open-shelter KNN index, already done by `enable_bitmapscan",
    "  = off` on the read pool; a Unix socket instead of TCP to PostgreSQL, no clear",
    "  change in app CPU. HTTP A/B of the final code against 6b4dbf6 (this script's wrk",
    "  settings in a smaller harness, 2 workers, 4 interleaved pairs at 05:35-05:42",
    "  UTC, load 4.4-7.4):",
    "  app CPU per locate 1.32 / 1.77 / 1.03 / 1.23 -> 1.08 / 1.15 / 0.87 / 1.01 ms",
    "  (req/s at that load 372 / 562 / 881 / 575 -> 628 / 805 / 891 / 720); the",
    "  PostgreSQL CPU of the backends named gis-* (shared with another benchmark's",
    "  connections) 0.91 / 0.72 / 0.82 / 0.90 -> 0.64 / 0.61 / 0.83 / 0.57 ms. Then",
    "  nearest on the read pool through the same libpq path (`execute_raw`, rows loaded",
    "  by psycopg's own loaders: same values and types, tested per layer): in-process,",
    "  16 concurrent nearest k=5, app CPU 0.74 / 0.97 / 0.63 -> 0.60 / 0.53 / 0.56 ms;",
    "  HTTP A/B against 6b4dbf6 at 05:50 UTC (load 3.6-4.3), two pairs: 885 / 1,329 ->",
    "  1,291 / 1,556 req/s, app CPU 0.89 / 0.83 -> 0.84 / 0.68 ms. One more locate pair",
    "  at 05:52 (load 3.2): 1,041 -> 1,229 req/s, app CPU 0.95 -> 0.73 ms. Full run of",
    "  this code at 05:56 UTC (load 0.8 -> 3.1, `/me` floor 2,583 req/s, so a quieter box",
    "  than at 04:03): locate 1,259 req/s (app 0.73 + PostgreSQL 0.78 ms per request),",
    "  nearest 1,469 req/s (0.76 + 0.54 ms); the run takes about 75 s.",
    "",
]


def write(res: dict[str, Any], args: argparse.Namespace) -> None:
    c = res["counts"]
    p = PREVIOUS
    b = BASELINE
    lines = [
        "# Query benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"demo `{args.scale}` ({c.get('buildings', 0):,} buildings, {c.get('grids', 0):,} grids); "
        f"uvicorn with {args.workers} workers; `make bench-query` (`benchmarks/bench_query.py`).",
        "",
        f"Load average of the machine (shared with other work) before/after the run: "
        f"{res['load_before'][0]:.1f} / {res['load_after'][0]:.1f}.",
        "",
        "| query | goal | measured | old code, same session (A/B) | previous committed run |",
        "|---|---|---|---|---|",
        f"| floor: `GET /me` (authentication only), one client | — | median {res['me_seq']['p50']:.1f} ms, p99 {res['me_seq']['p99']:.1f} ms | {b['me_seq']} | {p['me_seq']} |",
        f"| floor: `GET /me` under wrk | — | {res['me_wrk']['rps']:.0f} req/s, p99 {res['me_wrk']['p99']:.1f} ms, CPU/request app {res['me_wrk']['app_ms']:.2f} ms + PostgreSQL {res['me_wrk']['db_ms']:.2f} ms | {b['me_wrk']} | {p['me_wrk']} |",
        f"| `GET /query/locate`, one client, keep-alive (1,000 requests) | p99 < 10 ms | median {res['locate_seq']['p50']:.1f} ms, p99 {res['locate_seq']['p99']:.1f} ms | {b['locate_seq']} | {p['locate_seq']} |",
        f"| `GET /query/locate` under wrk ({args.connections} connections, {args.duration} s) | ≥ 1,000 req/s | {res['locate_wrk']['rps']:.0f} req/s, p50 {res['locate_wrk']['p50']:.1f} ms, p99 {res['locate_wrk']['p99']:.1f} ms, non-2xx {res['locate_wrk']['errors']}, CPU/request app {res['locate_wrk']['app_ms']:.2f} ms + PostgreSQL {res['locate_wrk']['db_ms']:.2f} ms | {b['locate_wrk']} | {p['locate_wrk']} |",
        f"| `GET /query/nearest?layer=shelters&k=5`, one client | p99 < 10 ms | median {res['nearest_seq']['p50']:.1f} ms, p99 {res['nearest_seq']['p99']:.1f} ms | {b['nearest_seq']} | {p['nearest_seq']} |",
        f"| `GET /query/nearest` under wrk | ≥ 1,000 req/s | {res['nearest_wrk']['rps']:.0f} req/s, p50 {res['nearest_wrk']['p50']:.1f} ms, p99 {res['nearest_wrk']['p99']:.1f} ms, non-2xx {res['nearest_wrk']['errors']}, CPU/request app {res['nearest_wrk']['app_ms']:.2f} ms + PostgreSQL {res['nearest_wrk']['db_ms']:.2f} ms | {b['nearest_wrk']} | {p['nearest_wrk']} |",
        f"| `POST /query/area`, 5 km² square on the densest grid ({res['area']['buildings']:,} buildings, {res['area']['households']:,} households, {res['area']['grids']} grids), 20 runs | < 200 ms | median {res['area']['median']:.0f} ms, max {res['area']['max']:.0f} ms | {b['area']} | {p['area']} |",
        f"| `POST /query/locate`, {res['batch']['n']:,} points (JSON, {res['batch']['found']:,} located), 3 runs | < 2 s | median {res['batch']['median_s']:.2f} s; CPU per warm run app {res['batch']['app_s']:.2f} s + PostgreSQL {res['batch']['db_s']:.2f} s | {b['batch']} | {p['batch']} |",
        f"| same, without HTTP and auth (query functions on one connection): locate | — | median {res['direct']['locate']['p50']:.1f} ms, p99 {res['direct']['locate']['p99']:.1f} ms | {b['direct_locate']} | {p['direct_locate']} |",
        f"| same, without HTTP and auth: nearest shelters k=5 | — | median {res['direct']['nearest']['p50']:.1f} ms, p99 {res['direct']['nearest']['p99']:.1f} ms | {b['direct_nearest']} | {p['direct_nearest']} |",
        f"| same, without HTTP and auth: 10,000-point batch | — | {res['direct']['batch_s']:.2f} s | {b['direct_batch']} | {p['direct_batch']} |",
        "",
        "Method: points are random building centroids of the bench user's area (a commander, so",
        "PII is unmasked and every lookup returns staff); every request is authenticated (the",
        "per-worker principal cache, as in production). Latency: sequential requests over one",
        "keep-alive connection. Throughput: `wrk -t2` rotating 500 URLs, run on the same 2-core",
        "machine as the server and PostgreSQL, so the load generator takes CPU from both.",
        "The `/me` rows are the floor of any authenticated endpoint on this machine at that",
        "moment (now: the token owner from the per-worker principal cache after one shared",
        "change-feed round trip): compare the query rows with them, and with the rows without",
        "HTTP, before reading the goals. `GET /query/locate` and `/query/nearest` are answered",
        "by the ASGI fast path on the read pool (one autocommit statement, generic plans) that",
        "returns ids and metres only; the details of the grid, village, hazard points, zones",
        "and shelters come from the worker's ready parts (`gis_service/query/details.py`, kept",
        "fresh by the `gis_query_change` feed, one shared round trip per request). Each wrk",
        f"run follows {WARMUP_S} s of unmeasured load on the same URLs (pools open, parts kept);",
        "the batch is run 3 times, the first with the parts of that worker cold. The batch",
        "runs in chunks of 1,000 points on two transactions at once. The nearest shelters,",
        "the nearest open shelter, the hazard points within 500 m and the risk zones at a",
        "point are probed through the geography GiST (shelters: all, and a partial index on",
        "the open ones; hazard points) and SP-GiST (zones) indexes of migration 0018. The load",
        "average says how busy the shared machine was (other engineers' test suites); the A/B",
        f"column is the code before this round's statements ({BASELINE_NOTE}) run by this",
        "script on the same data just before (kept in the script, not re-run each time):",
        "compare CPU/request rather than req/s across the columns.",
        "CPU/request (server process tree, and the whole PostgreSQL server) depends much",
        "less on the load than req/s:",
        "on an idle 2-core machine, req/s is bounded by about 2,000 ms / (app + PostgreSQL",
        "+ wrk CPU per request).",
        "",
        *HISTORY,
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
