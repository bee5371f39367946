"""`gis-service tiles ...`: Vector tiles, the layer registry and PMTiles."""

from __future__ import annotations

import typer

app = typer.Typer(help="Vector tiles, the layer registry and PMTiles.", no_args_is_help=True)
