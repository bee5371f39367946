"""The ``gis-service`` console script: start the parsing server early, then run the CLI.

Importing the CLI (Typer, FastAPI, SQLAlchemy, GeoAlchemy2 …) takes about 2.5 s of one
core. For a command that parses a file, the import sandbox's forkserver is started first
(``etl.forkserver``, a light module), so its own preload of about 1 s runs on the other
core meanwhile instead of delaying the first parse.
"""

from __future__ import annotations

import sys

#: Commands whose first step parses a file in the import sandbox.
PARSING_COMMANDS = frozenset({"import"})


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``gis_service.cli.main`` after the early start)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] and args[0] in PARSING_COMMANDS:
        from etl.forkserver import warm_up

        warm_up()
    from gis_service.cli import main as run

    run(args)


if __name__ == "__main__":
    main()
