"""Benchmark the web map's first map: navigation → the start view drawn, cold and warm.

"First map" = MapLibre's first ``idle`` after the page opens: the view's own layers and the
base (admin boundaries, communities, grids, labels) are loaded and rendered for the start
view (the user's whole district), no tile pending, no transition running. The figure is the
page's own clock (``performance.now()`` at that ``idle``, navigation start = 0), read back from
the ``gis:idle`` performance mark; the page also marks ``boot`` (scripts run), ``api`` (start-up
answers in), ``map`` (MapLibre created), ``load`` and ``render`` (the first frame drawn).

* cold: a new Chromium (fresh profile: no HTTP cache, no GPU shader cache) per load;
* warm: the same browser opens the page again in a new tab (HTTP and shader caches warm).

Debian's Chromium, headless, SwiftShader software GL (the tests' launch arguments), 1280×760,
the API under uvicorn (one process, as in the tests) on 127.0.0.1 against the district demo
(``GIS_BENCH_DATABASE_URL``, or a throw-away cluster loaded here). Besides wall clock, the CPU
seconds of the browser's processes per load are reported: on a shared machine they move much
less than the wall-clock figures. Writes ``benchmarks/web.md``; 2–5 minutes with the demo load, depending on the load.

    .venv/bin/python benchmarks/bench_web.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
from benchdb import bench_user, demo_database

# The browser tests' Chromium and launch arguments (shared/reference/WEB_RECIPE.md): one list.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.web_support import CHROMIUM, CHROMIUM_ARGS, uvicorn_app

OUT = Path(__file__).with_name("web.md")
VIEWPORT = {"width": 1280, "height": 760}
GOAL_S = 2.0
MARKS = ("boot", "api", "map", "render", "load", "idle")
TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def cpu_seconds(root: int) -> float:
    """CPU seconds of ``root``'s process tree (reaped children included)."""
    kids = _children()
    todo, total = [root], 0
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])
    return total / TICK


MARKS_JS = """() => Object.fromEntries(performance.getEntriesByType('mark')
    .filter((m) => m.name.startsWith('gis:')).map((m) => [m.name.slice(4), m.startTime / 1000]))"""


#: Shader programs MapLibre compiled for the first map (its painter's program cache; an
#: internal of maplibre-gl 5: -1 when absent). Each is a compile on SwiftShader.
PROGRAMS_JS = """() => { const c = window.__gis.map.painter && window.__gis.map.painter.cache;
    return c ? Object.keys(c).length : -1; }"""


def one_load(page: Any, url: str, server_pid: int) -> dict[str, float]:
    """Open the page and wait for its first map; marks, wall and CPU seconds."""
    me = os.getpid()
    cpu0, srv0, t0 = cpu_seconds(me), cpu_seconds(server_pid), time.monotonic()
    page.goto(url)
    page.wait_for_function(
        "() => performance.getEntriesByName('gis:idle').length > 0", polling=20, timeout=120_000
    )
    wall = time.monotonic() - t0
    marks: dict[str, float] = page.evaluate(MARKS_JS)
    errors = page.evaluate("() => window.__gis.errors.length")
    assert errors == 0, "the map reported errors"
    return {
        **marks,
        "programs": page.evaluate(PROGRAMS_JS),
        # MapLibre frames up to the first idle, less those the page left undrawn.
        "frames": page.evaluate(
            "() => (window.__gis.framesToIdle ?? -1) - (window.__gis.framesSkipped ?? 0)"
        ),
        "wall": wall,
        "browser_cpu": cpu_seconds(me) - cpu0,
        "server_cpu": cpu_seconds(server_pid) - srv0,
    }


def measure(base: str, token: str, view: str, runs: int, server_pid: int) -> dict[str, Any]:
    """``runs`` cold loads (new browser each) and ``runs`` warm loads (new tabs of the first browser) of one view."""
    from playwright import sync_api

    url = f"{base}/#view={view}"
    init = f"sessionStorage.setItem('gis-service.token', {token!r})"
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    with sync_api.sync_playwright() as p:
        for i in range(runs):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport=VIEWPORT)
                context.add_init_script(init)
                page = context.new_page()
                cold.append(one_load(page, url, server_pid))
                if i == 0:  # warm: the map opened again in a new tab of the same browser
                    for _ in range(runs):
                        page.close()
                        page = context.new_page()
                        warm.append(one_load(page, url, server_pid))
            finally:
                browser.close()
    return {"cold": cold, "warm": warm}


def med(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows if key in r)


def table(results: dict[str, dict[str, Any]], runs: int, load: tuple[float, ...]) -> str:
    lines = [
        "# Web map: first map on screen",
        "",
        f"`make bench-web` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{platform.node()}, {os.cpu_count()} cores; load average before/after "
        f"{load[0]:.2f} / {load[1]:.2f}). District demo (石峰区, 232 grids, ~30k buildings), "
        "Debian Chromium headless with SwiftShader software GL, 1280×760, the API under one "
        "uvicorn process on 127.0.0.1. Start view = the user's whole district.",
        "",
        "**First map** = navigation start → MapLibre's first `idle` (the view's layers and the "
        "base — boundaries, communities, grids, labels — loaded and drawn for the start view, "
        "nothing pending), on the page's clock. Cold = a new browser per load (no HTTP or "
        "shader cache); warm = the page opened again in a new tab of that browser. Medians of "
        f"{runs} loads (planner) and {max(3, runs // 2)} (other views) of each kind; "
        f"goal < {GOAL_S:.0f} s.",
        "",
        "| view | load | first map (s) | goal | scripts run | API answers | map created "
        "| first frame | wall (s) | browser CPU (s) | server CPU (s) | shader programs "
        "| map frames |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for view, res in results.items():
        for kind in ("cold", "warm"):
            rows = res[kind]
            first = med(rows, "idle")
            lines.append(
                f"| {view} | {kind} | **{first:.2f}** | {'met' if first < GOAL_S else 'not met'} "
                f"| {med(rows, 'boot'):.2f} | {med(rows, 'api'):.2f} | {med(rows, 'map'):.2f} "
                f"| {med(rows, 'render'):.2f} | {med(rows, 'wall'):.2f} "
                f"| {med(rows, 'browser_cpu'):.2f} | {med(rows, 'server_cpu'):.2f} "
                f"| {med(rows, 'programs'):.0f} | {med(rows, 'frames'):.0f} |"
            )
    lines += [
        "",
        "Columns between are the page's marks (seconds after navigation start). Wall = the "
        "Python side from `goto` until it saw the mark (polling every 20 ms). With "
        "software GL the browser's CPU (shader compilation and rasterisation in the GPU "
        "process) dominates: on a loaded machine the first-map figure grows with the load "
        "average, the CPU column much less. Map frames = MapLibre frames drawn up to the "
        "first idle (the page draws no frame of a half-loaded start view); each is also a "
        "composited window frame, which headless Chromium reads back from SwiftShader in "
        "full. First frame = the first frame drawn. The page's working area (sidebar, map, "
        "panel) is left unpainted until that frame and appears with it; the header shows "
        "from the first paint.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--views", default="planner,commander,survey")
    args = parser.parse_args()
    assert os.access(CHROMIUM, os.X_OK), "Debian's chromium is missing (scripts/install-system.sh)"
    load0 = os.getloadavg()[0]
    results: dict[str, dict[str, Any]] = {}
    with (
        demo_database("district", "gis_bench_web") as url,
        bench_user(url, "admin", "430204") as token,
        uvicorn_app(url) as (base, proc),
    ):
        pid = proc.pid
        # The server's own first-request costs (imports, pools) are not the page's.
        httpx.get(base + "/", timeout=30).raise_for_status()
        for view in args.views.split(","):
            runs = args.runs if view == "planner" else max(3, args.runs // 2)
            print(f"{view}: {runs} cold + {runs} warm loads …", flush=True)
            results[view] = measure(base, token, view, runs, pid)
            for kind in ("cold", "warm"):
                firsts = ", ".join(f"{r['idle']:.2f}" for r in results[view][kind])
                print(f"  {kind}: {firsts}", flush=True)
    text = table(results, args.runs, (load0, os.getloadavg()[0]))
    # Earlier figures and A/B notes are kept under "## History" across runs.
    old = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
    if "\n## History" in old:
        text += old[old.index("\n## History") :]
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
