"""The import sandbox's forkserver: what it preloads, and starting it early.

Light on purpose (no pandas, no GDAL): ``gis-service import`` starts the server before its
own imports (about 2.5 s for the CLI), so the server's preload (about 1 s) runs beside them
on the other core instead of delaying the first parse (``gis_service.entry``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver

#: Imported by the forkserver before it forks a parse: ``etl.sandbox_env`` first (the
#: children's GDAL settings, before any driver loads), then the readers and what they use.
PRELOAD = [
    "etl.sandbox_env",
    "etl.portable",
    "etl.readers",
    "etl.wkb",
    "etl.coords",
    "pyogrio",
    "openpyxl",
    "pandas",
]

#: The start method of the parsing children.
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(PRELOAD)


def warm_up() -> None:
    """Start the forkserver now (it imports the readers, ~1 s) so the first parse does not wait.

    Returns at once; the server preloads in its own process.
    """
    multiprocessing.forkserver.ensure_running()
