"""`gis-service grids ...`: Grid partitioning and assignment."""

from __future__ import annotations

import typer

app = typer.Typer(help="Grid partitioning and assignment.", no_args_is_help=True)
