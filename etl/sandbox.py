"""Parse untrusted files in a child process with memory and time limits (BAD_INPUTS §3.6).

A file that makes GDAL or openpyxl blow up, loop or allocate without bound kills only the
child; the caller gets a clear :class:`~etl.model.FileRejected`. Children are forked from a
forkserver (single-threaded, with the readers preloaded), so each parse starts in ~50 ms.
GDAL's network and VRT drivers are skipped in the children (only there) and PROJ never
goes online.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import resource
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

from etl.forkserver import CONTEXT
from etl.model import FileRejected
from gis_service import errors

#: The parsing children's GDAL settings. ``etl.sandbox_env``, the forkserver's first preloaded
#: module, puts them into the forkserver's environment before it imports (and registers) the
#: drivers; the API process itself keeps VRT, which rasterio needs for a raster's edge tiles.
CHILD_ENV = {
    "GDAL_SKIP": "VRT OGR_VRT HTTP WFS WMS WMTS WCS OAPIF OGCAPI CSW Elasticsearch CARTO NGW "
    "PLScenes EEDA DAAS GTFS PDF",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".none",
    "GDAL_HTTP_TIMEOUT": "1",
    "SHAPE_RESTORE_SHX": "NO",
    "OGR_GEOJSON_MAX_OBJ_SIZE": "200MB",
}
# PROJ never goes online, in any process (deployments are offline anyway).
os.environ["PROJ_NETWORK"] = "OFF"

#: Domain errors a child may report, rebuilt by name in the parent (exceptions built as
#: dataclasses do not survive pickling).
_ERRORS: dict[str, type[errors.GisError]] = {
    cls.__name__: cls
    for cls in (
        errors.GisError,
        errors.InvalidInput,
        errors.BadParameter,
        errors.TooLarge,
        errors.NotFound,
    )
}


def _child(  # noqa: PLR0917 - multiprocessing passes args positionally
    conn: multiprocessing.connection.Connection,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    memory_mb: int,
    cpu_seconds: int,
    stream: bool,
) -> None:
    try:
        if any(os.environ.get(key) != value for key, value in CHILD_ENV.items()):
            # The forkserver did not preload etl.sandbox_env (started by someone else).
            raise RuntimeError("the parsing sandbox's GDAL environment is not in place")
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        if stream:
            kwargs = {**kwargs, "emit": lambda part: conn.send(("part", part))}
        conn.send(("ok", fn(*args, **kwargs)))
    except errors.GisError as exc:
        conn.send(("error", type(exc).__name__, exc.code, exc.detail, exc.detail_zh))
    except MemoryError:
        conn.send(
            (
                "error",
                "TooLarge",
                "too_large",
                "the file needs more memory than allowed",
                "文件解析所需内存超出限制",
            )
        )
    except Exception:  # noqa: BLE001 - a crash of the parser is reported, not propagated
        conn.send(("crash", traceback.format_exc(limit=5)))
    finally:
        conn.close()


#: Serialises :func:`_start_without_main`'s swap of ``sys.modules["__main__"]``.
_START_LOCK = threading.Lock()


def _start_without_main(proc: multiprocessing.process.BaseProcess) -> None:
    """Start ``proc`` without the child re-running the parent's main script.

    multiprocessing tells every child to import the parent's ``__main__`` by path; for the
    ``gis-service`` console script that is the whole CLI and API (FastAPI, SQLAlchemy,
    Typer …: about 1 s of CPU per parse on top of the preloaded readers), for a benchmark
    script its own imports. The child needs none of it: what it runs is named by module
    (``etl.portable``). While the process starts, ``__main__`` is a bare module, so there is
    no path to import; the real one is back before anything else runs under the lock.
    """
    with _START_LOCK:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            proc.start()
        finally:
            sys.modules["__main__"] = main


def run_limited(
    fn: Callable[..., Any],
    *args: Any,
    memory_mb: int = 4096,
    seconds: float = 300.0,
    on_part: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``fn(*args, **kwargs)`` in a child process and return its (picklable) result.

    ``on_part``: ``fn`` also gets ``emit``; each part it emits reaches ``on_part`` here while
    the child goes on (so the two work at once; the time limit covers both). Should
    ``on_part`` raise, the child is stopped and the error propagates.

    Raises:
        FileRejected: the child crashed, ran out of memory or time.
        GisError: the domain error the child raised (rebuilt here).
    """
    parent, child = CONTEXT.Pipe(duplex=False)
    proc = CONTEXT.Process(
        target=_child,
        args=(child, fn, args, kwargs, memory_mb, int(seconds) + 1, on_part is not None),
        daemon=True,
    )
    _start_without_main(proc)
    child.close()
    deadline = time.monotonic() + seconds
    message: Any = None
    try:
        while message is None or (message[0] == "part" and on_part is not None):
            if message is not None:
                assert on_part is not None
                on_part(message[1])
            message = _receive(parent, deadline - time.monotonic(), seconds)
    finally:
        parent.close()
        if message is None or message[0] == "part":
            proc.kill()  # stopped half way: the child may be blocked sending
            proc.join(timeout=5)
        else:
            # The answer is in: the child only exits now, which for a big file (its
            # address space torn down) took 0.45 s of the caller's time. Reaped aside.
            threading.Thread(target=_reap, args=(proc,), daemon=True).start()
    if message[0] == "ok":
        return message[1]
    if message[0] == "error":
        _, name, code, detail, detail_zh = message
        if name == "FileRejected":
            raise FileRejected(detail, detail_zh, code=code)
        cls = _ERRORS.get(name, errors.InvalidInput)
        raise cls(detail=detail, detail_zh=detail_zh, code=code)
    raise FileRejected(
        "the file is damaged or not in the format its name says",
        "文件已损坏或格式与扩展名不符",
        code="parse_failed",
    )


def _reap(proc: multiprocessing.process.BaseProcess) -> None:
    """Wait for a child that has answered to exit; kill it should it linger."""
    proc.join(timeout=5)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _receive(conn: multiprocessing.connection.Connection, wait: float, seconds: float) -> Any:
    """The child's next message within ``wait`` seconds (of the ``seconds`` allowed)."""
    if not conn.poll(max(wait, 0.0)):
        raise FileRejected(
            f"parsing the file took longer than {seconds:.0f} s",
            f"文件解析超过 {seconds:.0f} 秒，已中止",
            code="parse_timeout",
        )
    try:
        return conn.recv()
    except EOFError:
        raise FileRejected(
            "the file could not be parsed within the memory and time limits",
            "文件解析超出内存或时间限制",
            code="parse_killed",
        ) from None
