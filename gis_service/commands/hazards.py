"""`gis-service hazards ...` and `gis-service report monthly`: the 隐患 ledger from the shell.

Commands act as a user (``--as LOGIN``: their role and area) or, by default, as the
operator at the console (a national admin recorded as ``cli``). Every step goes through
the same domain code as the API: one transaction, one event, the same rules.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.domain.scope import Principal
from gis_service.errors import GisError, InvalidInput, NotFound
from gis_service.hazards import ledger, notice, stats
from gis_service.hazards import workflow as wf
from gis_service.types import Role

app = typer.Typer(help="The 隐患 ledger (单四制).", no_args_is_help=True)
report_app = typer.Typer(help="每月一统计、一排名、一通报.", no_args_is_help=True)
app.add_typer(report_app, name="report")
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

AsOpt = Annotated[str | None, typer.Option("--as", help="act as this user (their role and area)")]
AdminOpt = Annotated[str | None, typer.Option("--admin", help="admin code (6/9/12 digits)")]


def _run(work: Callable[[AsyncConnection, Principal], Awaitable[T]], login: str | None) -> T:
    """Run ``work`` in one audited transaction as ``login`` (or the console operator)."""
    from gis_service.db.engine import TxContext, make_async_engine, resolve_url, transaction
    from gis_service.settings import load_settings

    settings = load_settings()

    async def go() -> T:
        engine = make_async_engine(resolve_url(settings.db), settings.db)
        try:
            principal = Principal(login="cli", role=Role.admin, scope_code=None)
            if login is not None:
                async with transaction(engine, TxContext(actor="cli")) as conn:
                    row = (
                        await conn.execute(
                            text(
                                "SELECT role, scope_code, id FROM app_user"
                                " WHERE login = :l AND active"
                            ),
                            {"l": login},
                        )
                    ).one_or_none()
                if row is None:
                    raise NotFound(detail=f"no active user {login!r}", detail_zh="用户不存在")
                principal = Principal(login, Role(row.role), row.scope_code, row.id)
            ctx = TxContext(actor=principal.login, scope=principal.scope_code)
            async with transaction(engine, ctx) as conn:
                return await work(conn, principal)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except GisError as exc:
        err.print(f"[bold red]error:[/] {exc.detail}")
        err.print(f"[red]错误：[/]{exc.detail_zh}")
        for f in exc.fields:
            err.print(f"  {f.field}: {f.message}")
        raise typer.Exit(code=1) from exc


@app.command("list")
def list_cmd(  # noqa: PLR0917 - one option per filter
    status: Annotated[list[str] | None, typer.Option(help="status (repeatable)")] = None,
    level: Annotated[str | None, typer.Option(help="general | major")] = None,
    overdue: Annotated[bool | None, typer.Option("--overdue/--not-overdue")] = None,
    admin: AdminOpt = None,
    sort: Annotated[str, typer.Option(help=", ".join(ledger.SORTS))] = "-found_at",
    limit: Annotated[int, typer.Option(min=1, max=ledger.MAX_LIMIT)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_user: AsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The ledger (台账), filtered and paged."""
    flt = ledger.HazardFilter(status=tuple(status or ()), level=level, overdue=overdue, admin=admin)
    page = _run(
        lambda c, p: ledger.list_hazards(c, p, flt, sort=sort, limit=limit, offset=offset),
        as_user,
    )
    if as_json:
        sys.stdout.write(json.dumps(page, ensure_ascii=False, indent=1) + "\n")
        return
    table = Table(
        title=f"隐患台账 {page['offset'] + 1}–{page['offset'] + len(page['items'])}"
        f" / {page['total']}"
    )
    for col in ("编号", "名称", "等级", "状态", "整改期限", "逾期"):
        table.add_column(col)
    for h in page["items"]:
        table.add_row(
            h["hazard_no"],
            h["title"],
            stats.LEVEL_ZH[h["level"]],
            h["status"],
            h["deadline"] or "",
            f"{h['days_overdue']} 天" if h["overdue"] else "",
        )
    out.print(table)


@app.command("show")
def show(
    hazard_id: Annotated[int, typer.Argument(min=1)],
    as_user: AsOpt = None,
) -> None:
    """One 隐患 with its full history (JSON)."""
    row = _run(lambda c, p: ledger.get_hazard(c, p, hazard_id), as_user)
    sys.stdout.write(json.dumps(row, ensure_ascii=False, indent=1, default=str) + "\n")


@app.command("step")
def step(
    hazard_id: Annotated[int, typer.Argument(min=1)],
    action: Annotated[str, typer.Argument(help=", ".join(wf.STEPS))],
    body: Annotated[str, typer.Option("--body", help="the step's JSON body")] = "{}",
    as_user: AsOpt = None,
) -> None:
    """Take a workflow step (交办, start, 申请销号, 销号, 退回, 挂牌督办) on the current version."""
    model = wf.BODIES.get(action)
    if model is None:
        err.print(f"[red]unknown action[/] {action}; one of {', '.join(wf.STEPS)}")
        raise typer.Exit(code=2)
    try:
        parsed = model.model_validate_json(body)
    except ValueError as exc:
        err.print(f"[red]invalid --body:[/] {exc}")
        raise typer.Exit(code=2) from exc

    async def work(c: AsyncConnection, p: Principal) -> dict[str, Any]:
        current = await ledger.get_hazard(c, p, hazard_id)
        return await ledger.transition(
            c, p, hazard_id, action, expected_version=current["row_version"], body=parsed
        )

    row = _run(work, as_user)
    out.print(f"{row['hazard_no']}: {row['status']} (version {row['row_version']})")


@app.command("backfill")
def backfill(as_user: AsOpt = None) -> None:
    """Give imported 隐患 rows without events a synthetic history (found → … → now)."""
    n = _run(ledger.backfill_history, as_user)
    out.print(f"{n} hazards given a history")


def _default_root(conn: AsyncConnection) -> Awaitable[Any]:
    """The deepest admin unit holding every hazard (the ledger's own area)."""
    return conn.execute(
        text(
            """SELECT a.code FROM admin_division a
               WHERE NOT EXISTS (
                   SELECT 1 FROM safety_hazard h JOIN admin_division v ON v.code = h.admin_code
                   WHERE NOT (a.code = ANY(v.ancestors)))
               ORDER BY cardinality(a.ancestors) DESC LIMIT 1"""
        )
    )


@report_app.command("monthly")
def monthly(  # noqa: PLR0917 - one option per flag
    month: Annotated[str, typer.Option("--month", help="YYYY-MM")],
    admin: AdminOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, md, html, docx")] = "table",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write here")] = None,
    publish: Annotated[bool, typer.Option("--publish", help="freeze the ended month")] = False,
    as_user: AsOpt = None,
) -> None:
    """The month's statistics, ranking and draft notice (通报), recomputed from the events."""
    if fmt not in ("table", "json", *notice.FORMATS):
        err.print(f"[red]unknown format[/] {fmt}")
        raise typer.Exit(code=2)
    m = _parse_month(month)

    async def work(c: AsyncConnection, p: Principal) -> dict[str, Any]:
        code = admin
        if code is None and p.scope_code is None:
            code = (await _default_root(c)).scalar_one_or_none()
        if publish:
            return await stats.publish(c, p, m, code)
        return await stats.monthly_report(c, p, m, code)

    report = _run(work, as_user)
    if fmt == "table":
        _print_report(report)
        return
    data = (
        json.dumps(report, ensure_ascii=False, indent=1).encode()
        if fmt == "json"
        else notice.render(report, fmt)[0]
    )
    if output is None:
        if fmt == "docx":
            err.print("[red]docx needs -o FILE[/]")
            raise typer.Exit(code=2)
        sys.stdout.write(data.decode() + "\n")
    else:
        output.write_bytes(data)
        err.print(f"wrote {output} ({len(data):,} bytes)")


def _parse_month(month: str) -> stats.Month:
    try:
        return stats.Month.parse(month)
    except InvalidInput as exc:
        err.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(code=2) from exc


def _print_report(report: dict[str, Any]) -> None:
    t = report["totals"]
    out.print(
        f"[bold]{report['root']['name']} {report['month']}[/] "
        f"{'(已发布)' if report.get('published') else '(实时统计)'}\n"
        f"本月发现 {t['found_month']}，本月销号 {t['closed_month']}；累计发现 {t['found_total']}，"
        f"累计销号 {t['closed_total']}，整改率 {t['closure_rate']}%；"
        f"逾期未整改 {t['overdue_open']}，"
        f"重大隐患未销号 {t['major_open']}"
    )
    table = Table(title="排名")
    for col in ("排名", "单位", "本月发现", "本月销号", "整改率", "逾期", "得分", "较上月"):
        table.add_column(col)
    for r in report["ranking"]:
        table.add_row(
            str(r["rank"] or "—"),
            r["name"],
            str(r["found_month"]),
            str(r["closed_month"]),
            f"{r['closure_rate']}%" if r["closure_rate"] is not None else "—",
            str(r["overdue_open"]),
            f"{r['score']:.2f}" if r["score"] is not None else "—",
            str(r.get("rank_change") if r.get("rank_change") is not None else "—"),
        )
    out.print(table)
    out.print(report["formula_zh"])


# ---------------------------------------------------------------------------
# Hazard overlays (issue 9): register a raster or zone layer
# ---------------------------------------------------------------------------
@app.command("add")
def add_layer(  # noqa: PLR0917 - one option per layer field
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    hazard_type: Annotated[str, typer.Option("--type", help="flood, landslide, forest_fire …")],
    scheme: Annotated[str, typer.Option("--scheme", help="classification scheme key")],
    name: Annotated[str, typer.Option("--name", help="layer key (a-z, 0-9, _)")],
    title: Annotated[str | None, typer.Option(help="Chinese title (default: the key)")] = None,
    kind: Annotated[str, typer.Option(help="hazard | risk | prevention_zoning")] = "hazard",
    scenario: Annotated[str | None, typer.Option(help="e.g. 50年一遇, 2026-07-01")] = None,
    return_period: Annotated[int | None, typer.Option(min=1, help="years")] = None,
    unit: Annotated[str | None, typer.Option(help="unit of the values (m, 指数 …)")] = None,
    year: Annotated[int | None, typer.Option(min=1900, max=2100)] = None,
    admin: AdminOpt = None,
    class_field: Annotated[str | None, typer.Option(help="zones: column with class keys")] = None,
    value_field: Annotated[str | None, typer.Option(help="zones: numeric column")] = None,
    replace: Annotated[bool, typer.Option(help="overwrite a layer of the same name")] = False,
) -> None:
    """Add a hazard layer: a GeoTIFF (any CRS, kept nodata) → COG, or polygons → zones."""
    from gis_service.db.engine import resolve_url
    from gis_service.db.rasters import LayerMeta
    from gis_service.impact import importer
    from gis_service.settings import load_settings

    settings = load_settings()
    meta = LayerMeta(
        key=name,
        title=title or name,
        hazard_type=hazard_type,
        layer_kind=kind,
        scheme_key=scheme,
        unit=unit,
        scenario=scenario,
        return_period=return_period,
        year=year,
        producer="cli",
        admin_code=admin,
    )
    try:
        done = importer.add(
            resolve_url(settings.db),
            file,
            meta,
            max_pixels=settings.raster.max_pixels,
            replace=replace,
            class_field=class_field,
            value_field=value_field,
        )
    except GisError as exc:
        err.print(f"[bold red]error:[/] {exc.detail}")
        err.print(f"[red]错误：[/]{exc.detail_zh}")
        raise typer.Exit(code=1) from exc
    what = f"COG {done.sha256[:12]}" if done.sha256 else f"{done.features} zones"
    out.print(f"hazard layer [bold]{done.key}[/] ({done.data_type}, {what}) id={done.layer_id}")
