"""Time the 隐患 ledger: list pages, one workflow step, the monthly report and the notice.

Two ledgers: the district demo (1,056 隐患) and the same ledger copied ×K (default 100, about
105,600 隐患 and 480,000 events: a province's year). Runs against a throw-away embedded
cluster (or ``GIS_BENCH_DATABASE_URL``) and writes the medians to ``benchmarks/hazards.md``.

    .venv/bin/python benchmarks/bench_hazards.py [--copies 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from bench_demo_load import fresh_db, server

from gis_service.db.engine import TxContext, make_async_engine, transaction
from gis_service.demo import loader
from gis_service.demo.generator import generate
from gis_service.domain.scope import Principal
from gis_service.hazards import ledger, notice, stats
from gis_service.hazards import workflow as wf
from gis_service.settings import load_settings
from gis_service.types import Role

OUT = Path(__file__).with_name("hazards.md")
PLANNER = Principal("bench", Role.admin, "430204")

COPY_HAZARDS = """
INSERT INTO safety_hazard (hazard_no, title, description, enterprise_id, geom, level, category,
    found_via, status, escalated, responsible_org, measures, deadline, found_at, closed_at,
    admin_code, grid_code, source)
SELECT h.hazard_no || '-' || k, h.title, h.description, h.enterprise_id, h.geom, h.level,
       h.category, h.found_via, h.status, h.escalated, h.responsible_org, h.measures,
       h.deadline, h.found_at, h.closed_at, h.admin_code, h.grid_code, 'bench:' || h.id
FROM safety_hazard h CROSS JOIN generate_series(1, %s) k
WHERE h.source = 'demo'
"""
COPY_EVENTS = """
INSERT INTO hazard_event (hazard_id, from_status, to_status, actor, at, source)
SELECT c.id, e.from_status, e.to_status, e.actor, e.at, 'bench'
FROM safety_hazard c
JOIN hazard_event e ON e.hazard_id = split_part(c.source, ':', 2)::bigint
WHERE c.source LIKE 'bench:%%'
ORDER BY c.id, e.at, e.id
"""


def scale_up(url: str, copies: int) -> tuple[int, int]:
    with psycopg.connect(loader.psycopg_conninfo(url)) as c:
        c.execute("SET LOCAL gis.bulk = 'on'")
        c.execute(COPY_HAZARDS, (copies,))
        c.execute(COPY_EVENTS)
        c.commit()
        c.autocommit = True
        c.execute("ANALYZE safety_hazard")
        c.execute("ANALYZE hazard_event")
        h = c.execute("SELECT count(*) FROM safety_hazard").fetchone()
        e = c.execute("SELECT count(*) FROM hazard_event").fetchone()
    assert h is not None
    assert e is not None
    return int(h[0]), int(e[0])


async def timed(
    engine: Any, work: Callable[[Any], Awaitable[Any]], repeat: int
) -> tuple[float, Any]:
    """Median milliseconds of ``work`` in its own transaction, and its last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        async with transaction(engine, TxContext(actor="bench")) as conn:
            result = await work(conn)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


async def measure(url: str, repeat: int) -> dict[str, float]:
    settings = load_settings(environment="test")
    engine = make_async_engine(url, settings.db)
    month = stats.Month(2026, 10)
    out: dict[str, float] = {}
    try:
        out["list: first page, no filter (with total)"], _ = await timed(
            engine, lambda c: ledger.list_hazards(c, PLANNER, ledger.HazardFilter()), repeat
        )
        out["list: overdue=true, sorted by deadline"], _ = await timed(
            engine,
            lambda c: ledger.list_hazards(
                c, PLANNER, ledger.HazardFilter(overdue=True), sort="deadline"
            ),
            repeat,
        )
        ids = await _ids(engine, "rectifying", repeat)

        async def one_step(conn: Any) -> Any:
            hid = ids.pop()
            cur = await ledger.get_hazard(conn, PLANNER, hid)
            return await ledger.transition(
                conn,
                PLANNER,
                hid,
                "escalate",
                expected_version=cur["row_version"],
                body=wf.EscalateBody(supervision_level="county"),
            )

        out["one step (escalate) incl. reading the hazard and its history"], _ = await timed(
            engine, one_step, repeat
        )
        out["monthly report (JSON, county root, with previous month)"], report = await timed(
            engine, lambda c: stats.monthly_report(c, PLANNER, month), repeat
        )
        for fmt in ("docx", "pdf"):
            t0 = time.perf_counter()
            for _ in range(repeat):
                notice.render(report, fmt)
            out[f"notice rendering ({fmt}, from the report)"] = (
                (time.perf_counter() - t0) * 1000 / repeat
            )
    finally:
        await engine.dispose()
    return out


async def _ids(engine: Any, status: str, n: int) -> list[int]:
    async with transaction(engine, TxContext(actor="bench")) as conn:
        page = await ledger.list_hazards(
            conn, PLANNER, ledger.HazardFilter(status=(status,), escalated=False), limit=n
        )
    return [h["id"] for h in page["items"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    city = generate("district")
    results: list[tuple[str, int, int, dict[str, float]]] = []
    with server() as admin_url:
        url = fresh_db(admin_url)
        loader.load(url, city)
        with psycopg.connect(loader.psycopg_conninfo(url)) as c:
            h = c.execute("SELECT count(*) FROM safety_hazard").fetchone()
            e = c.execute("SELECT count(*) FROM hazard_event").fetchone()
        assert h is not None
        assert e is not None
        results.append(("district demo", h[0], e[0], asyncio.run(measure(url, args.repeat))))
        n_h, n_e = scale_up(url, args.copies)
        results.append(
            (f"demo ledger ×{args.copies + 1}", n_h, n_e, asyncio.run(measure(url, args.repeat)))
        )
    lines = [
        "# 隐患 ledger benchmark",
        "",
        f"`benchmarks/bench_hazards.py --copies {args.copies} --repeat {args.repeat}` on "
        f"{platform.node()} ({platform.processor() or platform.machine()}), "
        "embedded PostgreSQL; medians in milliseconds, each call its own transaction. "
        "The 2-core machine is shared with other work while this runs, so expect noise.",
        "",
        "| operation | "
        + " | ".join(f"{n} ({h:,} 隐患, {e:,} events)" for n, h, e, _ in results)
        + " |",
        "|---|" + "---:|" * len(results),
    ]
    for key in results[0][3]:
        lines.append(f"| {key} | " + " | ".join(f"{r[3][key]:.1f}" for r in results) + " |")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
