"""`gis-service tiles ...` (export PMTiles) and `gis-service layers ...` (validate the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gis_service.errors import GisError

app = typer.Typer(help="Vector tiles, the layer registry and PMTiles.", no_args_is_help=True)
layers_app = typer.Typer(help="The published layers (layers/*.yaml).", no_args_is_help=True)

err = Console(stderr=True)
out = Console()

DirOption = Annotated[
    Path | None, typer.Option("--dir", help="layers directory (default: the repository's layers/)")
]


@layers_app.command("validate")
def validate(
    directory: DirOption = None,
    write_schema: Annotated[
        bool, typer.Option("--write-schema", help="(re)write layers/layer.schema.json")
    ] = False,
) -> None:
    """Check every layer file (unknown keys, tables, columns, geometry types) and the schema."""
    from gis_service.registry import default_layers_dir, json_schema, scan
    from gis_service.registry.loader import SCHEMA_FILE

    folder = directory or default_layers_dir()
    registry = scan(folder)
    for problem in registry.problems:
        err.print(f"[red]{problem.file}[/]: {problem.message}")
    schema_path = folder / SCHEMA_FILE
    schema = json_schema()
    if write_schema:
        schema_path.write_text(schema, encoding="utf-8")
        out.print(f"wrote {schema_path}")
    elif not schema_path.is_file() or schema_path.read_text(encoding="utf-8") != schema:
        err.print(f"[red]{SCHEMA_FILE}[/]: out of date; run with --write-schema")
        raise typer.Exit(code=1)
    if registry.problems:
        raise typer.Exit(code=1)
    out.print(f"{len(registry.layers)} layers valid: {', '.join(sorted(registry.layers))}")


@layers_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a layer file."""
    from gis_service.registry import json_schema

    typer.echo(json_schema(), nl=False)


def _fail(exc: GisError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc.detail}")
    err.print(f"[red]错误：[/]{exc.detail_zh}")
    return typer.Exit(code=1)


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise typer.BadParameter("--bbox takes west,south,east,north in degrees") from exc
    if not (-180 <= west < east <= 180 and -85.06 <= south < north <= 85.06):
        raise typer.BadParameter("--bbox must be west<east, south<north inside lon/lat range")
    return west, south, east, north


@app.command("export")
def export(  # noqa: PLR0917 - typer passes options by parameter
    layers: Annotated[str, typer.Argument(help="layer names, comma separated")],
    output: Annotated[Path, typer.Option("-o", "--output", help="the .pmtiles file to write")],
    admin: Annotated[
        str | None, typer.Option("--admin", help="an admin code: its area, its features only")
    ] = None,
    bbox: Annotated[
        str | None, typer.Option("--bbox", help="west,south,east,north (lon/lat)")
    ] = None,
    minzoom: Annotated[int, typer.Option(min=0, max=22)] = 8,
    maxzoom: Annotated[int, typer.Option(min=0, max=22)] = 16,
) -> None:
    """Export layers into a PMTiles archive (our own MVT, same SQL as the server)."""
    import psycopg

    from gis_service.db.engine import resolve_url
    from gis_service.registry import load_registry
    from gis_service.settings import load_settings
    from gis_service.tiles.pmtiles_store import area_bbox
    from gis_service.tiles.pmtiles_store import export as run_export
    from gis_service.tiles.service import conninfo_of

    if (admin is None) == (bbox is None):
        raise typer.BadParameter("give exactly one of --admin or --bbox")
    if minzoom > maxzoom:
        raise typer.BadParameter("--minzoom is above --maxzoom")
    try:
        registry = load_registry()
        specs = tuple(registry.get(n) for n in dict.fromkeys(layers.split(",")))
        url = conninfo_of(resolve_url(load_settings().db))
        with psycopg.connect(url, autocommit=True) as conn:
            area = area_bbox(conn, admin) if admin else _bbox(bbox or "")
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:>7,}/{task.total:<7,}"),
                TimeElapsedColumn(),
                console=err,
            ) as progress:
                task = progress.add_task("tiles", total=1)

                def step(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                report = run_export(
                    conn, specs, area, minzoom, maxzoom, output, scope=admin, progress=step
                )
    except GisError as exc:
        raise _fail(exc) from exc
    out_mb = report.bytes / 1e6
    out.print(
        f"wrote {report.path}: {report.tiles:,} tiles ({report.empty:,} empty skipped),"
        f" {out_mb:.1f} MB in {report.seconds:.1f} s"
        + (f"; {report.capped} tiles hit a feature cap" if report.capped else "")
    )


@app.command("validate")
def validate_archive(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
) -> None:
    """Check a PMTiles archive (header, sections, directories, tile offsets)."""
    from gis_service.tiles.pmtiles_store import validate as check

    try:
        info = check(path)
    except GisError as exc:
        raise _fail(exc) from exc
    h = info.header
    out.print(
        f"{path}: valid PMTiles v3, {info.tiles:,} tiles, zoom {h['min_zoom']}-{h['max_zoom']}"
    )


@app.command("import")
def import_archive(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    name: Annotated[
        str | None, typer.Option("--name", help="published name (default: the file stem)")
    ] = None,
) -> None:
    """Validate a PMTiles archive and publish it under /pmtiles/{name}.pmtiles."""
    import re
    import shutil

    from gis_service.tiles.pmtiles_store import validate as check
    from gis_service.tiles.settings import TileSettings

    published = name or path.stem
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]{0,63}", published):
        raise typer.BadParameter("name: lower-case letters, digits, _ and - (max 64)")
    try:
        check(path)
    except GisError as exc:
        raise _fail(exc) from exc
    folder = TileSettings().pmtiles_dir
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{published}.pmtiles"
    partial = target.with_suffix(".pmtiles.part")
    shutil.copyfile(path, partial)
    partial.replace(target)
    out.print(f"published {target}")
