"""`gis-service hazards ...`: The 隐患 ledger."""

from __future__ import annotations

import typer

app = typer.Typer(help="The 隐患 ledger.", no_args_is_help=True)
