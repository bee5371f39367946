"""``gis-service``: the command line (Typer + rich). One entry point per task."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gis_service.commands import grids as grids_commands
from gis_service.commands import hazards as hazards_commands
from gis_service.commands import tiles as tiles_commands
from gis_service.errors import GisError
from gis_service.settings import Settings, load_settings
from gis_service.types import Role

app = typer.Typer(
    help="gis-service: GIS risk and grid-mapping service for emergency-management bureaus.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The database: embedded PostGIS cluster and migrations.", no_args_is_help=True
)
demo_app = typer.Typer(help="The demo city (株洲市石峰区).", no_args_is_help=True)
users_app = typer.Typer(help="Users and their tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(users_app, name="users")
app.add_typer(tiles_commands.app, name="tiles")
app.add_typer(tiles_commands.layers_app, name="layers")
app.add_typer(grids_commands.app, name="grids")
app.add_typer(hazards_commands.app, name="hazards")
app.add_typer(hazards_commands.report_app, name="report")

err = Console(stderr=True)
out = Console()


def _settings() -> Settings:
    return load_settings()


def _fail(exc: GisError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc.detail}")
    if exc.detail_zh:
        err.print(f"[red]错误：[/]{exc.detail_zh}")
    return typer.Exit(code=1)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except GisError as exc:
        raise _fail(exc) from exc


def _cluster(settings: Settings) -> Any:
    from gis_service.db.cluster import EmbeddedCluster

    return EmbeddedCluster(settings.db.data_dir, dbname=settings.db.dbname)


def _url(settings: Settings, *, start: bool = True) -> str:
    from gis_service.db.engine import resolve_url

    with _errors():
        return resolve_url(settings.db, start=start)


def _say(message: str) -> None:
    err.print(f"[dim]{message}[/]")


# ---------------------------------------------------------------------------- db
@db_app.command("up")
def db_up() -> None:
    """Create (first time) and start the embedded PostGIS cluster; idempotent."""
    settings = _settings()
    if settings.db.url:
        err.print("DATABASE_URL is set: using that server, no embedded cluster to start.")
        return
    with _errors():
        info = _cluster(settings).up(progress=_say)
    out.print(f"PostGIS running on 127.0.0.1:{info.port} (data: {info.data_dir})")


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster (data is kept)."""
    settings = _settings()
    with _errors():
        _cluster(settings).down()
    out.print("stopped")


@db_app.command("status")
def db_status() -> None:
    """Say whether the database is running and where."""
    settings = _settings()
    if settings.db.url:
        out.print("using DATABASE_URL (external server)")
        return
    with _errors():
        info = _cluster(settings).status()
    state = "[green]running[/]" if info.running else "[yellow]stopped[/]"
    out.print(f"{state}  data={info.data_dir}  port={info.port or '-'}")
    if not info.running:
        raise typer.Exit(code=3)


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (starts the embedded cluster if needed)."""
    out.print(_url(_settings()), soft_wrap=True, highlight=False)


@db_app.command("migrate")
def db_migrate(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Apply the Alembic migrations (to ``head`` by default)."""
    from gis_service.db import migrate

    url = _url(_settings())
    with _errors():
        from gis_service.db.engine import db_errors

        with db_errors():
            migrate.upgrade(url, revision)
    out.print(f"schema at {revision}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="target revision, e.g. base")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm dropping data")] = False,
) -> None:
    """Take the schema down (``base`` drops every table)."""
    from gis_service.db import migrate

    if not yes:
        err.print("refusing without --yes: a downgrade can drop tables and data")
        raise typer.Exit(code=2)
    migrate.downgrade(_url(_settings()), revision)
    out.print(f"schema at {revision}")


# -------------------------------------------------------------------------- demo
class _Bars:
    """Rich progress bars keyed by step name."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        task = self.tasks.get(step)
        if task is None:
            task = self.tasks[step] = self.progress.add_task(step, total=max(total, 1))
        self.progress.update(task, completed=done, total=max(total, 1))


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.completed:>9,}/{task.total:<9,}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


DEMO_USERS: tuple[tuple[str, Role, str | None], ...] = (
    ("demo-admin", Role.admin, "430200"),
    ("demo-planner", Role.planner, "430204"),
    ("demo-surveyor", Role.surveyor, "430204"),
    ("demo-commander", Role.commander, "430204"),
    ("demo-gridworker", Role.grid_worker, "430204"),
    ("demo-viewer", Role.viewer, "430204"),
)


async def _create_demo_users(url: str, settings: Settings) -> list[tuple[str, str, str, str, str]]:
    """(Re)create one user per role with a fresh token and a random password."""
    import secrets

    from sqlalchemy import delete

    from gis_service.db.engine import TxContext, make_async_engine, transaction
    from gis_service.db.models import AppUser
    from gis_service.domain.users import create_user, set_password

    engine = make_async_engine(url, settings.db)
    try:
        rows = []
        async with transaction(engine, TxContext(actor="demo-loader")) as conn:
            await conn.execute(delete(AppUser).where(AppUser.login.in_([u[0] for u in DEMO_USERS])))
            for login, role, scope in DEMO_USERS:
                made = await create_user(conn, login, role, scope, source="demo")
                password = secrets.token_urlsafe(9)
                await set_password(conn, login, password)
                rows.append((login, role.value, scope or "全国", made.token, password))
        return rows
    finally:
        await engine.dispose()


def _print_tokens(rows: list[tuple[str, str, str, str, str]], settings: Settings) -> None:
    out.print("[bold]demo users, one per role[/] (login, role, scope, token, password):")
    for login, role, scope, token, password in rows:
        # Plain print: a token must never be wrapped or styled by the terminal renderer.
        print(f"  {login:<16} {role:<12} {scope:<7} {token}  {password}")
    path = Path(settings.db.data_dir) / "demo-tokens.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for login, role, scope, token, password in rows:
            fh.write(f"{login}\t{role}\t{scope}\t{token}\t{password}\n")
    out.print(
        f"tokens and passwords also saved to {path} (mode 600); use a token as"
        " 'Authorization: Bearer <token>', or sign in on the web map with login and password"
    )


@demo_app.command("load")
def demo_load(
    scale: Annotated[
        str, typer.Option(help="district (石峰区) or city (≈1M buildings)")
    ] = "district",
    seed: Annotated[int, typer.Option(help="generator seed (deterministic)")] = 20261122,
    replace: Annotated[
        bool, typer.Option("--replace/--keep", help="reload even if demo data is present")
    ] = False,
    users: Annotated[bool, typer.Option("--users/--no-users", help="(re)create demo users")] = True,
) -> None:
    """Generate the demo city and load it (COPY, one transaction), then print demo tokens."""
    import psycopg

    from gis_service.db import migrate
    from gis_service.demo import loader

    if scale not in ("district", "city"):
        err.print("--scale must be district or city")
        raise typer.Exit(code=2)
    settings = _settings()
    url = _url(settings)
    with _errors():
        migrate.upgrade(url)
    with psycopg.connect(loader.psycopg_conninfo(url)) as conn:
        present = loader.demo_loaded(conn)
    if present and not replace:
        out.print(f"demo already loaded ({present:,} buildings); use --replace to reload")
    else:
        from gis_service.demo.generator import generate

        t0 = time.perf_counter()
        with err.status(f"generating the {scale} demo city (seed {seed}) …"):
            city = generate(scale, seed=seed)  # type: ignore[arg-type]
        t_gen = time.perf_counter() - t0
        with _progress() as bar:
            counts = loader.load(url, city, replace=True, progress=_Bars(bar))
        t_all = time.perf_counter() - t0
        summary = Table(title=f"demo {scale} loaded")
        summary.add_column("table")
        summary.add_column("rows", justify="right")
        for table, n in counts.items():
            if table != "seconds":
                summary.add_row(table, f"{n:,}")
        out.print(summary)
        out.print(f"generate {t_gen:.1f} s, total {t_all:.1f} s")
    if users:
        rows = asyncio.run(_create_demo_users(url, settings))
        _print_tokens(rows, settings)


# ------------------------------------------------------------------------ import
def _print_report(report: dict[str, Any]) -> None:
    status = report["status"]
    colour = {"succeeded": "green", "checked": "cyan"}.get(status, "red")
    out.print(
        f"[bold {colour}]{status}[/]  {report['file_name']} → {report['target']}"
        f"  (batch {report['batch_id']}{', already imported' if report['reused'] else ''})"
    )
    facts = Table(show_header=False, box=None)
    facts.add_column()
    facts.add_column()
    for label, key in (
        ("format / 格式", "format"),
        ("layer / 图层", "layer"),
        ("encoding / 编码", "encoding"),
        ("CRS / 坐标系", "crs"),
        ("rows read / 读取", "rows_read"),
        ("inserted / 新增", "rows_inserted"),
        ("updated / 更新", "rows_updated"),
        ("rejected / 拒绝", "rows_rejected"),
        ("repaired / 修复", "rows_repaired"),
    ):
        if report.get(key) not in (None, ""):
            facts.add_row(label, str(report[key]))
    out.print(facts)
    for note in report["notes"]:
        out.print(f"  • {note}", highlight=False)
    problems = report["problems"]
    if problems:
        table = Table(
            title=f"problems (first {min(len(problems), 30)} of {report['rows_rejected']} rows)"
        )
        for col in ("row / 行", "column / 列", "reason / 原因"):
            table.add_column(col, overflow="fold")
        for prob in problems[:30]:
            reason = prob["reason_zh"] + " / " + prob["reason"]
            if prob["repaired"]:
                reason = "[yellow](repaired 已修复)[/] " + reason
            table.add_row(str(prob["row"]), prob["column"] or "", reason)
        out.print(table)
    if report["error_detail"]:
        err.print(f"[red]{report['error_detail_zh'] or ''}[/]\n{report['error_detail']}")


def _pairs(items: list[str] | None, flag: str, shape: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            err.print(f"{flag} must look like {shape}, got {item!r}")
            raise typer.Exit(code=2)
        out[key] = value
    return out


@app.command("import")
def import_file(  # noqa: PLR0917 - one option per flag
    target: Annotated[
        str, typer.Argument(help="enterprise, building, geohazard_point, … (see --help-targets)")
    ],
    file: Annotated[
        Path, typer.Argument(help="SHP (folder/.shp/.zip), GPKG, GeoJSON, CSV or XLSX")
    ],
    crs: Annotated[
        str | None,
        typer.Option(help="EPSG:4547, cgcs2000, wgs84, gcj02 or bd09 (overrides the file)"),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="text encoding, e.g. gbk (overrides detection)")
    ] = None,
    layer: Annotated[str | None, typer.Option(help="GeoPackage layer")] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet")] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="源列=field (repeatable); field lon/lat picks coordinates"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="field=value for a field the file lacks (repeatable)"),
    ] = None,
    skip_bad_rows: Annotated[
        bool, typer.Option("--skip-bad-rows", help="load good rows, report the rest")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check everything, write nothing")
    ] = False,
    scope: Annotated[str | None, typer.Option(help="refuse rows outside this admin code")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Import a file into a table: detect encoding and CRS, map columns, validate, merge."""
    import json as _json

    from etl.pipeline import ImportOptions, run_import

    overrides = _pairs(map_, "--map", "源列=field")
    constants = _pairs(set_, "--set", "field=value")
    if not file.exists():
        err.print(f"no such file: {file}")
        raise typer.Exit(code=2)
    settings = _settings()
    url = _url(settings)
    options = ImportOptions(
        target=target,
        crs=crs,
        encoding=encoding,
        layer=layer,
        sheet=sheet,
        mapping=overrides,
        constants=constants,
        skip_bad_rows=skip_bad_rows,
        dry_run=dry_run,
    )
    with _errors():
        if as_json:
            report = run_import(
                url, file, options, limits=settings.etl, scope_code=scope, actor="cli"
            )
        else:
            with _progress() as bar:
                report = run_import(
                    url,
                    file,
                    options,
                    limits=settings.etl,
                    scope_code=scope,
                    actor="cli",
                    progress=_Bars(bar),
                )
    data = report.as_dict()
    if as_json:
        print(_json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _print_report(data)
    if report.status not in ("succeeded", "checked"):
        raise typer.Exit(code=1)


@app.command("targets")
def targets(
    target: Annotated[str | None, typer.Argument(help="one target to describe in full")] = None,
) -> None:
    """What can be imported: each target's fields, the headers accepted for them, the values."""
    from etl.mapping import TARGETS, describe

    if target is None:
        table = Table(title="import targets / 导入对象")
        for col in ("target", "名称", "geometry", "natural key / 唯一键"):
            table.add_column(col)
        for name, each in sorted(TARGETS.items()):
            table.add_row(name, each.title_zh, each.geometry, ", ".join(each.natural_key) or "-")
        out.print(table)
        return
    spec = TARGETS.get(target)
    if spec is None:
        err.print(f"unknown target {target!r}; one of: {', '.join(sorted(TARGETS))}")
        raise typer.Exit(code=2)
    table = Table(title=f"{target} · {spec.title_zh}")
    for col in ("field", "字段", "required", "accepted headers / 可识别列名", "values / 取值"):
        table.add_column(col, overflow="fold")
    for field in describe(spec):
        values = field.get("values") or {}
        shown = "; ".join(f"{k}: {'/'.join(v[:4])}" for k, v in values.items())
        table.add_row(
            field["field"],
            field["title_zh"],
            "*" if field.get("required") else "",
            "、".join(field.get("headers", [])[:8]),
            shown,
        )
    out.print(table)


@app.command("export")
def export_file(  # noqa: PLR0917 - one option per flag
    target: Annotated[str, typer.Argument(help="enterprise, building, geohazard_point, …")],
    fmt: Annotated[
        str, typer.Option("-f", "--format", help="geojson, gpkg, shp, csv or xlsx")
    ] = "gpkg",
    crs: Annotated[
        str,
        typer.Option(
            help="cgcs2000 (default), wgs84, EPSG:…, or gcj02/bd09 for Amap/Baidu overlays"
        ),
    ] = "cgcs2000",
    encoding: Annotated[str, typer.Option(help="text encoding for shp/csv: utf-8, gbk")] = "utf-8",
    admin: Annotated[str | None, typer.Option(help="only rows under this admin code")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="folder to write into")] = Path(
        "."
    ),
) -> None:
    """Export a table to a file bureaus can open (coordinates labelled in the file name)."""
    import psycopg

    from etl.export import export_table
    from gis_service.demo.loader import psycopg_conninfo

    settings = _settings()
    url = _url(settings)
    output.mkdir(parents=True, exist_ok=True)
    with _errors(), psycopg.connect(psycopg_conninfo(url)) as conn:
        result = export_table(
            conn, target, fmt, output, scope_code=None, admin_code=admin, crs=crs, encoding=encoding
        )
    out.print(f"{result.rows:,} rows → {result.path}  ({result.crs_label})")


# ------------------------------------------------------------------------- users
@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="login")],
    role: Annotated[Role, typer.Option(help="role")],
    scope: Annotated[
        str | None,
        typer.Option(help="admin code of the user's area (omit: nationwide, admin only)"),
    ] = None,
) -> None:
    """Create a user; its token is printed alone on the last line (shown once)."""
    from gis_service.db.engine import TxContext, make_async_engine, transaction
    from gis_service.domain.users import create_user

    settings = _settings()
    url = _url(settings)

    async def run() -> str:
        engine = make_async_engine(url, settings.db)
        try:
            async with transaction(engine, TxContext(actor="cli")) as conn:
                made = await create_user(conn, name, role, scope)
            return made.token
        finally:
            await engine.dispose()

    with _errors():
        token = asyncio.run(run())
    err.print(f"created {name} ({role.value}, scope {scope or '全国'}); token:")
    print(token)


@users_app.command("list")
def users_list() -> None:
    """List users (no tokens: only their hashes are stored)."""
    from sqlalchemy import select

    from gis_service.db.engine import make_sync_engine
    from gis_service.db.models import AppUser

    engine = make_sync_engine(_url(_settings()))
    table = Table()
    for col in ("login", "role", "scope", "active"):
        table.add_column(col)
    with engine.connect() as conn:
        for r in conn.execute(
            select(AppUser.login, AppUser.role, AppUser.scope_code, AppUser.active).order_by(
                AppUser.login
            )
        ):
            table.add_row(r.login, r.role, r.scope_code or "全国", "yes" if r.active else "no")
    engine.dispose()
    out.print(table)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="login")]) -> None:
    """Disable a user: their token stops working on the next request."""
    from sqlalchemy import update

    from gis_service.db.engine import make_sync_engine
    from gis_service.db.models import AppUser

    engine = make_sync_engine(_url(_settings()))
    with engine.begin() as conn:
        n = conn.execute(update(AppUser).where(AppUser.login == name).values(active=False)).rowcount
    engine.dispose()
    if not n:
        err.print(f"no user {name!r}")
        raise typer.Exit(code=1)
    out.print(f"disabled {name}")


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="login")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Set a user's password for ``POST /auth/login`` (ends their login sessions)."""
    from gis_service.db.engine import TxContext, make_async_engine, transaction
    from gis_service.domain.users import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    settings = _settings()
    url = _url(settings)

    async def run() -> None:
        engine = make_async_engine(url, settings.db)
        try:
            async with transaction(engine, TxContext(actor="cli")) as conn:
                await set_password(conn, name, password)
        finally:
            await engine.dispose()

    with _errors():
        asyncio.run(run())
    out.print(f"password set for {name}")


# ------------------------------------------------------------------------- serve
@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=16, help="worker processes (default 2)")
    ] = None,
    loop: Annotated[
        str, typer.Option(help="event loop: auto (uvloop when installed), uvloop or asyncio")
    ] = "auto",
) -> None:
    """Serve the API and the web map (starts the embedded database if needed).

    Each worker keeps its own tile cache, pool and change feed; two workers on two cores
    serve warm tiles about twice as fast as one (benchmarks/tiles.md).
    """
    if loop not in {"auto", "uvloop", "asyncio"}:
        err.print(f"[red]--loop {loop}[/]: use auto, uvloop or asyncio")
        raise typer.Exit(code=2)
    import socket

    import uvicorn

    settings = _settings()
    host = host or settings.api.host
    port = port or settings.api.port
    url = _url(settings)
    if not settings.db.url:
        # The worker builds its app from the environment: hand it the running cluster.
        os.environ["GIS_DB_URL"] = url
    if "public_url" not in settings.api.model_fields_set:
        # Links (TileJSON, OGC, ``next``) name the address actually served, unless configured.
        os.environ["GIS_API_PUBLIC_URL"] = f"http://{host}:{port}"
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            err.print(f"[red]port {port} on {host} is in use[/]: pick another with --port")
            raise typer.Exit(code=1) from None
    out.print(
        f"gis-service on [bold]http://{host}:{port}[/]  (API docs: http://{host}:{port}/docs)"
    )
    uvicorn.run(
        "gis_service.main:app",
        host=host,
        port=port,
        workers=workers or settings.api.workers,
        loop=loop,
        log_level="info",
        proxy_headers=False,
        server_header=False,
        # httptools, with well-formed tile requests answered below the ASGI stack.
        http="gis_service.api.tile_protocol:TileHttpProtocol",
    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=argv)


if __name__ == "__main__":
    main(sys.argv[1:])
