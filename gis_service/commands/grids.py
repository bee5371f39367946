"""`gis-service grids ...`: partition communities into grids, assign people, report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gis_service.errors import GisError
from gis_service.types import Role

app = typer.Typer(help="Grid partitioning and assignment.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except GisError as exc:
        err.print(f"[bold red]error:[/] {exc.detail}")
        if exc.detail_zh:
            err.print(f"[red]错误：[/]{exc.detail_zh}")
        for f in exc.fields:
            err.print(f"  {f.field}: {f.message}")
        raise typer.Exit(code=1) from exc


def _url() -> str:
    from gis_service.db.engine import resolve_url
    from gis_service.settings import load_settings

    return resolve_url(load_settings().db)


def _principal() -> Any:
    from gis_service.domain.scope import Principal

    return Principal(login="cli", role=Role.admin, scope_code=None)


class _Bars:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        task = self.tasks.get(step)
        if task is None:
            task = self.tasks[step] = self.progress.add_task(step, total=max(total, 1))
        self.progress.update(task, completed=done, total=max(total, 1))


@app.command("partition")
def partition(  # noqa: PLR0917 - one option per parameter
    communities: Annotated[
        list[str] | None, typer.Argument(help="12-digit community (社区/村) codes")
    ] = None,
    admin: Annotated[
        str | None, typer.Option("--admin", help="every community under this code")
    ] = None,
    target: Annotated[int, typer.Option(help="households per grid")] = 400,
    tolerance: Annotated[float, typer.Option(help="allowed deviation, 0.1 = ±10 %")] = 0.10,
    barriers: Annotated[
        str, typer.Option(help="barrier_line kinds grids follow (comma-separated)")
    ] = "road_major,road_minor,river,rail,wall",
    seed: Annotated[int, typer.Option(help="random seed (same seed, same grids)")] = 0,
    cold: Annotated[bool, typer.Option("--cold", help="ignore the current grids")] = False,
    commit: Annotated[bool, typer.Option("--commit", help="commit as a new version")] = False,
    weight: Annotated[
        bool, typer.Option("--weight", help="balance workload: red/orange firms, geohazards")
    ] = False,
    special: Annotated[
        str,
        typer.Option(
            help="专属网格, comma-separated: facility kinds (school,hospital,market), "
            "large_enterprise, facility:ID, enterprise:ID"
        ),
    ] = "",
    hard_barriers: Annotated[
        bool,
        typer.Option(
            "--hard-barriers/--soft-barriers",
            help="with a crossing layer, cross rivers/rail/major roads only at crossings",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Propose grids (and with --commit, make them current), then print a quality report."""
    from gis_service.db.engine import make_sync_engine
    from gis_service.grids import jobs, store

    if bool(communities) == bool(admin):
        err.print("give community codes or --admin CODE (not both)")
        raise typer.Exit(code=2)
    url = _url()
    user = _principal()
    engine = make_sync_engine(url)
    try:
        with _errors():
            with jobs.sync_tx(engine, user) as conn:
                codes = store.communities_for(conn, user, communities or [admin or ""])
                req = store.ProposalRequest(
                    community_codes=tuple(codes),
                    admin_code=admin or codes[0],
                    target=target,
                    tolerance=tolerance,
                    barriers=tuple(b.strip() for b in barriers.split(",") if b.strip()),
                    seed=seed,
                    warm=not cold,
                    weight=weight,
                    special=tuple(s.strip() for s in special.split(",") if s.strip()),
                    hard_barriers=hard_barriers,
                )
                pid = store.create_proposal(conn, req, user)
            with _bar() as bar:
                quality = jobs.run_job(url, pid, req, user, progress=_Bars(bar))
            result = None
            if commit:
                with jobs.sync_tx(engine, user) as conn:
                    result = store.commit_proposal(conn, pid, user)
    finally:
        engine.dispose()
    assert quality is not None
    if as_json:
        print(json.dumps({"proposal": pid, "quality": quality, "commit": result}, indent=2))
        return
    _report(pid, quality, result)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed:>5}/{task.total:<5}"),
        TimeElapsedColumn(),
        console=err,
    )


def _report(pid: int, q: dict[str, Any], result: dict[str, Any] | None) -> None:
    t = Table(title=f"proposal {pid}: {q['grids']} grids in {q['communities']} communities")
    for c in ("community", "households", "grids", "min", "max", "within ±tol", "one piece"):
        t.add_column(c, justify="right")
    for c in q["per_community"]:
        t.add_row(
            c["community_code"],
            f"{c['households']:,}",
            str(c["grids"]),
            str(c["hh_min"]),
            str(c["hh_max"]),
            f"{c['within_tolerance']}/{c['grids']}",
            f"{c['one_piece']}/{c['grids']}",
        )
    out.print(t)
    out.print(
        f"within ±{q['tolerance']:.0%}: {q['within_tolerance_share']:.1%}  "
        f"beyond ±20 %: {q['beyond_20pct']}  one piece: {q['one_piece_share']:.1%}  "
        f"boundary on streets/rivers: {q['boundary_on_barriers_share']:.1%}  "
        f"timings: {q['timings_s']}"
    )
    for c in q["per_community"]:
        for sg in c.get("special_grids", []):
            out.print(
                f"专属网格 in {c['community_code']}: {', '.join(sg['features'])} "
                f"({sg['households']} households, outside the balance)"
            )
    if q["too_small_communities"]:
        out.print(f"too small for one full grid: {', '.join(q['too_small_communities'])}")
    if result:
        out.print(
            f"committed: {result['retired']} grids retired, {result['created']} created, "
            f"{result['rows_restamped']} rows re-stamped, "
            f"{result['assignments_moved']} assignments carried over"
        )
    else:
        out.print(f"not committed: gis-service grids commit {pid}")


@app.command("commit")
def commit(proposal: Annotated[int, typer.Argument(help="proposal id")]) -> None:
    """Commit a ready proposal: retire current grids, insert new ones, re-stamp located rows."""
    from gis_service.db.engine import make_sync_engine
    from gis_service.grids import jobs, store

    engine = make_sync_engine(_url())
    try:
        with _errors(), jobs.sync_tx(engine, _principal()) as conn:
            result = store.commit_proposal(conn, proposal, _principal())
    finally:
        engine.dispose()
    out.print(json.dumps(result, ensure_ascii=False))


@app.command("roster")
def roster(file: Annotated[Path, typer.Argument(help="网格员花名册 .xlsx")]) -> None:
    """Bulk-assign grid workers from an Excel roster (姓名, 电话, 网格编码/网格名称[, 角色])."""
    from gis_service.db.engine import make_sync_engine
    from gis_service.grids import assign, jobs

    if not file.is_file():
        err.print(f"no such file: {file}")
        raise typer.Exit(code=2)
    engine = make_sync_engine(_url())
    try:
        with _errors(), jobs.sync_tx(engine, _principal()) as conn:
            result = assign.import_roster(conn, _principal(), file)
    finally:
        engine.dispose()
    out.print(json.dumps(result, ensure_ascii=False))


@app.command("report")
def report(admin: Annotated[str, typer.Option("--admin", help="area code")]) -> None:
    """Unassigned grids, workers with more than one grid, stand-ins in force."""
    from gis_service.db.engine import make_sync_engine
    from gis_service.grids import assign, jobs

    engine = make_sync_engine(_url())
    try:
        with _errors(), jobs.sync_tx(engine, _principal()) as conn:
            result = assign.reports(conn, _principal(), admin)
    finally:
        engine.dispose()
    print(json.dumps(result, ensure_ascii=False, indent=2))
