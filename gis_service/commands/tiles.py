"""`gis-service tiles ...` (export PMTiles) and `gis-service layers ...` (validate the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
