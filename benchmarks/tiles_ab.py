"""In-run A/B of two code trees of our tile server: equal content, cache off, interleaved.

    .venv/bin/python benchmarks/tiles_ab.py --a /tmp/tiles-old --b /work/main \
        [--layers enterprises,grids] [--rounds 3] [--tile-repeat 4]

Why: on the shared box wall-clock figures move with other people's load, so a change to the
cold tile path is judged by server CPU per tile (app + PostgreSQL backends) of the old and
the new tree measured side by side: both servers run at once on the bench cluster of
``bench_tiles.py`` (``--data-dir``, started and loaded by it), and their passes alternate
A, B, B, A, ... so drifting load hits both. ``--a``/``--b`` are code roots (``git archive``
of a commit, or this checkout); each server imports ``gis_service`` from its root. CPU is
the scheduler's run time in ns (``bench_tiles.NsMeter``), and the 300-tile list is repeated
``--tile-repeat`` times per pass so a pass is long against scheduling noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_tiles as bt


def start(  # noqa: PLR0917 - one call site per side
    root: Path, url: str, layers_dir: Path, name: str, workers: int, protocol: str, env: list[str]
) -> bt.Server:
    """Our server from code root ``root`` (its cwd and PYTHONPATH), cache off, ``env`` added."""
    here, saved = Path.cwd(), dict(os.environ)
    os.environ["PYTHONPATH"] = str(root)
    os.environ.update(kv.split("=", 1) for kv in env)
    os.chdir(root)  # uvicorn puts its cwd first on sys.path
    try:
        return bt.ours(url, layers_dir, 0, name, workers=workers, protocol=protocol)
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--a", type=Path, required=True, help="code root of side A (the old)")
    ap.add_argument("--b", type=Path, default=bt.ROOT, help="code root of side B (the new)")
    ap.add_argument("--a-http", default="httptools", help="uvicorn --http of side A")
    ap.add_argument("--b-http", default="gis_service.api.tile_protocol:TileHttpProtocol")
    ap.add_argument("--a-env", action="append", default=[], help="KEY=VALUE for side A")
    ap.add_argument("--b-env", action="append", default=[], help="KEY=VALUE for side B")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/gis-bench-tiles"))
    ap.add_argument("--layers", default="enterprises,grids")
    ap.add_argument("--concurrency", default="8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tile-repeat", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    from gis_service.db.cluster import EmbeddedCluster

    info = EmbeddedCluster(a.data_dir, dbname="gis").status()
    if not info.running or info.url is None:
        raise SystemExit(f"start the bench cluster first (GIS_DATA_DIR={a.data_dir})")
    url = "postgresql://" + info.url.split("://", 1)[1]
    pg_pid = int((a.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    bt.prepare_database(url)
    work = Path(tempfile.mkdtemp(prefix="tiles-ab-"))
    layers_dir = bt.equal_layers(work / "layers-equal")
    tiles = bt.read_tiles() * a.tile_repeat
    servers = {
        "A": start(a.a, url, layers_dir, "ab-a", a.workers, a.a_http, a.a_env),
        "B": start(a.b, url, layers_dir, "ab-b", a.workers, a.b_http, a.b_env),
    }
    got: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    try:
        for layer in a.layers.split(","):
            for conc in (int(c) for c in a.concurrency.split(",")):
                for server in servers.values():  # unmetered: every worker's statements prepared
                    bt.ours_pass(server.port, layer, tiles, conc)
                for r in range(a.rounds):
                    for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                        server = servers[side]
                        meter = bt.NsMeter({"app": [server.proc.pid], "db": [pg_pid]}).start()
                        n = bt.ours_pass(server.port, layer, tiles, conc)
                        m = meter.stop()
                        app, db = 1000 * m["app"] / max(n, 1), 1000 * m["db"] / max(n, 1)
                        got.setdefault((side, layer, conc), []).append({
                            "tiles_per_s": n / m["wall_s"],
                            "app_cpu_ms_per_tile": app,
                            "db_cpu_ms_per_tile": db,
                            "server_cpu_ms_per_tile": app + db,
                            "other_share": m["other_share"],
                        })  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
    load = os.getloadavg()
    print(f"# A={a.a} {a.a_http} {a.a_env} B={a.b} {a.b_http} {a.b_env}")
    print(f"# rounds={a.rounds} tiles/pass={len(tiles)} load={load} CPU: scheduler ns")
    print("| layer | c | side | tiles/s | app ms | PG ms | server ms | other | per round app |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    for (side, layer, conc), rows in sorted(got.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        each = " ".join(f"{r['app_cpu_ms_per_tile']:.3f}" for r in rows)
        print(
            f"| {layer} | {conc} | {side} | {med['tiles_per_s']:.0f} |"
            f" {med['app_cpu_ms_per_tile']:.3f} | {med['db_cpu_ms_per_tile']:.3f} |"
            f" {med['server_cpu_ms_per_tile']:.3f} | {100 * med['other_share']:.0f}% | {each} |"
        )
    (work / "ab.json").write_text(json.dumps({str(k): v for k, v in got.items()}), "utf-8")
    print(f"# raw: {work / 'ab.json'}")


if __name__ == "__main__":
    main()
