"""A private PostgreSQL + PostGIS cluster in a data folder (the embedded default).

With no ``DATABASE_URL``, gis-service runs its own cluster with the system's
``initdb``/``pg_ctl`` and PostGIS. The cluster listens on ``127.0.0.1`` on a free
port and on a private unix socket; the superuser ``gis`` logs in with a random
password kept in ``<root>/password`` (mode 0600).

Layout of the data root (``./.gis-data`` by default)::

    <root>/cluster.json   where the cluster lives (pgdata, bindir, port, socket_dir)
    <root>/password       the superuser's password
    <root>/pg/            PGDATA
    <root>/log/           the server log (postgresql.log)
    <root>/run/           the unix socket (a private folder under /tmp when the path is long)

``initdb`` refuses to run as root, so as root every server program runs as the
``postgres`` OS user, which must be able to enter every parent folder of PGDATA.
When it cannot (a checkout under root's 0700 home, say), PGDATA, the log and the
socket move to ``/var/lib/gis-service/<sha1 of root>[:12]/`` and
``<root>/cluster.json`` records where they went.

Nothing here depends on FastAPI or on the settings: callers pass plain arguments.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from gis_service.errors import DatabaseSetupError

log = logging.getLogger(__name__)

#: The oldest PostgreSQL major version supported.
MIN_PG_MAJOR = 13
#: The cluster's superuser (also the application's login).
SUPERUSER = "gis"
#: The OS account that runs the server when gis-service runs as root.
POSTGRES_OS_USER = "postgres"
#: Where PGDATA moves when the ``postgres`` user cannot reach the data root.
RELOCATION_BASE = Path("/var/lib/gis-service")
#: Where a private socket folder goes when the data root's path is too long.
SHORT_TMP = Path("/tmp")  # noqa: S108 - a private mkdtemp folder, never a fixed name

#: Server settings for a small machine; written to ``gis_service.conf`` in PGDATA,
#: which ``postgresql.conf`` includes, so ``ALTER SYSTEM`` can still override them.
SERVER_SETTINGS: dict[str, str] = {
    "shared_buffers": "256MB",
    "max_connections": "100",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    # Parallel query makes tile SQL ~4x slower (reference/TILE_SERVING.md).
    "max_parallel_workers_per_gather": "0",
    "jit": "off",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",
    "effective_cache_size": "1GB",
    "random_page_cost": "1.1",
    "max_wal_size": "2GB",
    # A private cluster with no replicas: a table truncated or created in a transaction
    # is filled without WAL (synced at commit), e.g. a first bulk import (etl.load).
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "password_encryption": "scram-sha-256",
    "logging_collector": "off",
    "log_destination": "stderr",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_min_duration_statement": "1000",
}

_META_FILE = "cluster.json"
_PASSWORD_FILE = "password"  # noqa: S105 - a file name, not a secret
_LOCK_FILE = ".lock"
_CONF_FILE = "gis_service.conf"
_INCLUDE_LINE = f"include_if_exists = '{_CONF_FILE}'"
_SOCKET_PATH_LIMIT = 100  # bytes; the kernel's limit is 107
_LOG_ROTATE_BYTES = 10 * 1024 * 1024
_DBNAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_TRIM = 4000

#: Default PostgreSQL major of each distribution release, to name the right package.
_DISTRO_DEFAULT_MAJOR: dict[tuple[str, str], int] = {
    ("debian", "11"): 13,
    ("debian", "12"): 15,
    ("debian", "13"): 17,
    ("ubuntu", "22.04"): 14,
    ("ubuntu", "24.04"): 16,
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ClusterInfo:
    """Where an embedded cluster is and how to reach it.

    Attributes:
        data_dir: The PGDATA folder actually used (after any relocation).
        port: The TCP port on 127.0.0.1, or ``None`` when the server is not running.
        socket_dir: The unix-socket folder (used, or to be used at the next start).
        running: Whether the server is running.
        url: A SQLAlchemy URL ``postgresql+psycopg://gis:<password>@127.0.0.1:<port>/<db>``
            when running, else ``None``.
    """

    data_dir: Path
    port: int | None
    socket_dir: Path
    running: bool
    url: str | None


# --------------------------------------------------------------------------- errors


def _trim(text: str | bytes | None, limit: int = _TRIM) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _setup_error(detail: str, detail_zh: str, **extra: Any) -> DatabaseSetupError:
    """A user-actionable error; ``extra`` (paths, stderr) is for the log only, and logged here."""
    if extra:
        details = "\n".join(f"  {key}: {value}" for key, value in extra.items())
        log.error("%s\n%s", detail, details)
    return DatabaseSetupError(detail=detail, detail_zh=detail_zh, extra=extra)


# --------------------------------------------------------------------------- processes


def _is_root() -> bool:
    return os.geteuid() == 0


def _postgres_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        raise _setup_error(
            "running as root needs the `postgres` system user, which does not exist: "
            "run `sudo apt-get install postgresql` (it creates the user), "
            "or run gis-service as a normal user",
            "以 root 运行需要系统用户 `postgres`，但它不存在：请运行 "
            "`sudo apt-get install postgresql`（会创建该用户），或以普通用户运行 gis-service",
        ) from None


def _owner_ids() -> tuple[int, int]:
    """The uid/gid that owns PGDATA and runs the server."""
    if _is_root():
        account = _postgres_account()
        return account.pw_uid, account.pw_gid
    return os.geteuid(), os.getegid()


def _find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        candidate = Path(folder) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _as_owner(args: list[str]) -> list[str]:
    """Wrap a command so it runs as the cluster's owner (``postgres`` when we are root)."""
    if not _is_root():
        return args
    account = _postgres_account()
    runuser = _find_tool("runuser")
    if runuser:
        return [runuser, "-u", account.pw_name, "--", *args]
    setpriv = _find_tool("setpriv")
    if setpriv:
        return [
            setpriv,
            f"--reuid={account.pw_uid}",
            f"--regid={account.pw_gid}",
            "--init-groups",
            "--",
            *args,
        ]
    su = _find_tool("su")
    if su:
        return [su, "-s", "/bin/sh", "-c", shlex.join(args), account.pw_name]
    raise _setup_error(
        "cannot switch to the postgres user (runuser, setpriv and su are all missing): "
        "run `sudo apt-get install util-linux`, or run gis-service as a normal user",
        "无法切换到 postgres 用户（runuser、setpriv、su 均不存在）：请运行 "
        "`sudo apt-get install util-linux`，或以普通用户运行 gis-service",
    )


def _clean_env() -> dict[str, str]:
    """The environment for server programs: no stray PG* variables, C messages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _run(
    args: list[str],
    *,
    what: str,
    what_zh: str,
    timeout: float,
    as_owner: bool = True,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command (list args, no shell) with a timeout and captured output.

    Args:
        args: The program and its arguments.
        what: What the command does, for the error message ("Creating the cluster").
        what_zh: The same in Chinese.
        timeout: Seconds before the command is killed.
        as_owner: Run as the cluster owner (``postgres`` when root).
        check: Raise :class:`DatabaseSetupError` on a non-zero exit status.

    Returns:
        The completed process.

    Raises:
        DatabaseSetupError: The program is missing, timed out or (with ``check``) failed.
    """
    cmd = _as_owner(args) if as_owner else args
    log.debug("running %s", shlex.join(cmd))
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=_clean_env(),
            cwd="/",
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise _setup_error(
            f"{what} failed: the program {Path(cmd[0]).name} is missing; "
            "reinstall PostgreSQL with `sudo apt-get install --reinstall postgresql`",
            f"{what_zh}失败：缺少程序 {Path(cmd[0]).name}；请运行 "
            "`sudo apt-get install --reinstall postgresql` 重新安装 PostgreSQL",
            command=shlex.join(cmd),
            error=str(exc),
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise _setup_error(
            f"{what} did not finish within {timeout:.0f} s: check that the disk is not full "
            "and the machine not overloaded, then try again",
            f"{what_zh}在 {timeout:.0f} 秒内未完成：请检查磁盘是否已满、机器是否过载，然后重试",
            command=shlex.join(cmd),
            stdout=_trim(exc.stdout),
            stderr=_trim(exc.stderr),
        ) from exc
    if check and proc.returncode != 0:
        raise _setup_error(
            f"{what} failed: the command's output is in the log; fix the cause "
            "and run `gis-service db up` again",
            f"{what_zh}失败：命令输出已写入日志；排除原因后重新运行 `gis-service db up`",
            command=shlex.join(cmd),
            returncode=proc.returncode,
            stdout=_trim(proc.stdout),
            stderr=_trim(proc.stderr),
        )
    return proc


# --------------------------------------------------------------------------- finding PostgreSQL


@dataclass(frozen=True)
class _PgInstall:
    major: int
    bindir: Path
    has_postgis: bool


def _has_server_programs(bindir: Path) -> bool:
    return all(os.access(bindir / p, os.X_OK) for p in ("initdb", "pg_ctl", "postgres"))


def _pg_config_value(pg_config: Path | str, flag: str) -> str | None:
    try:
        proc = subprocess.run(
            [str(pg_config), flag],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = proc.stdout.strip()
    return value if proc.returncode == 0 and value else None


def _major_of(bindir: Path, pg_config: Path | str | None) -> int | None:
    if bindir.parent.parent == Path("/usr/lib/postgresql") and bindir.parent.name.isdigit():
        return int(bindir.parent.name)
    version = _pg_config_value(pg_config, "--version") if pg_config else None
    if version is None:
        try:
            proc = subprocess.run(
                [str(bindir / "postgres"), "--version"],
                capture_output=True,
                text=True,
                timeout=15,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        version = proc.stdout
    match = re.search(r"(\d+)(?:\.\d+)?", version or "")
    return int(match.group(1)) if match else None


def _postgis_present(major: int, bindir: Path, pg_config: Path | str | None) -> bool:
    sharedirs = [Path(f"/usr/share/postgresql/{major}")]
    config = pg_config if pg_config else (bindir / "pg_config")
    if os.access(config, os.X_OK):
        value = _pg_config_value(config, "--sharedir")
        if value:
            sharedirs.append(Path(value))
    return any((d / "extension" / "postgis.control").is_file() for d in sharedirs)


def _installed_postgres() -> list[_PgInstall]:
    """Every PostgreSQL server install found, newest first (pg_config's wins ties)."""
    seen: set[Path] = set()
    found: list[tuple[int, int, _PgInstall]] = []

    def consider(bindir: Path, pg_config: Path | str | None, rank: int) -> None:
        try:
            key = bindir.resolve()
        except OSError:
            return
        if key in seen or not _has_server_programs(bindir):
            return
        seen.add(key)
        major = _major_of(bindir, pg_config)
        if major is None:
            return
        install = _PgInstall(major, bindir, _postgis_present(major, bindir, pg_config))
        found.append((major, rank, install))

    pg_config = _find_tool("pg_config")
    if pg_config:
        bindir_text = _pg_config_value(pg_config, "--bindir")
        if bindir_text:
            consider(Path(bindir_text), pg_config, 0)
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for child in root.iterdir():
            if child.name.isdigit():
                consider(child / "bin", None, 1)
    found.sort(key=lambda item: (-item[0], item[1]))
    return [install for _, _, install in found]


def _distro_default_major() -> int:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            info[key] = value.strip().strip('"')
    return _DISTRO_DEFAULT_MAJOR.get((info.get("ID", ""), info.get("VERSION_ID", "")), 15)


def _no_postgis_error(major: int) -> DatabaseSetupError:
    return _setup_error(
        f"PostGIS is not installed for PostgreSQL {major}: "
        f"run `sudo apt-get install postgresql-{major}-postgis-3`",
        f"PostgreSQL {major} 未安装 PostGIS：请运行 "
        f"`sudo apt-get install postgresql-{major}-postgis-3`",
    )


def find_pg_bindir() -> Path:
    """Find the newest installed PostgreSQL (13 or newer) that has PostGIS.

    Looks at ``pg_config --bindir`` and every ``/usr/lib/postgresql/N/bin``.

    Returns:
        The folder holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Raises:
        DatabaseSetupError: No PostgreSQL, only too old ones, or none with PostGIS;
            the message names the apt packages to install.
    """
    installs = _installed_postgres()
    usable = [i for i in installs if i.major >= MIN_PG_MAJOR]
    if not usable:
        major = _distro_default_major()
        if installs:
            old = installs[0].major
            raise _setup_error(
                f"PostgreSQL {old} is too old ({MIN_PG_MAJOR} or newer is needed): "
                f"run `sudo apt-get install postgresql-{major} postgresql-{major}-postgis-3`",
                f"PostgreSQL {old} 版本过旧（需要 {MIN_PG_MAJOR} 或更新）：请运行 "
                f"`sudo apt-get install postgresql-{major} postgresql-{major}-postgis-3`",
            )
        raise _setup_error(
            "PostgreSQL is not installed: "
            f"run `sudo apt-get install postgresql postgresql-{major}-postgis-3`",
            "未安装 PostgreSQL：请运行 "
            f"`sudo apt-get install postgresql postgresql-{major}-postgis-3`",
        )
    for install in usable:
        if install.has_postgis:
            return install.bindir
    raise _no_postgis_error(usable[0].major)


def _bindir_for_major(major: int, recorded: Path | None) -> Path:
    """The server programs of one major version, for an existing cluster."""
    if recorded is not None and _has_server_programs(recorded):
        config = recorded / "pg_config"
        if _major_of(recorded, config if config.exists() else None) == major:
            return recorded
    for install in _installed_postgres():
        if install.major == major:
            if not install.has_postgis:
                raise _no_postgis_error(major)
            return install.bindir
    raise _setup_error(
        f"the database was created with PostgreSQL {major}, which is not installed: run "
        f"`sudo apt-get install postgresql-{major} postgresql-{major}-postgis-3` "
        "(or upgrade the data folder with pg_upgrade)",
        f"数据库由 PostgreSQL {major} 创建，但该版本未安装：请运行 "
        f"`sudo apt-get install postgresql-{major} postgresql-{major}-postgis-3`"
        "（或用 pg_upgrade 升级数据目录）",
    )


# --------------------------------------------------------------------------- ports


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether PostgreSQL could listen on ``host:port`` (it sets SO_REUSEADDR, so do we)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """Find a free TCP port on ``host`` by binding to it.

    Args:
        host: The address to bind on.

    Returns:
        A port number that was bindable a moment ago.
    """
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if _port_is_free(port, host):
            return port
    raise _setup_error(  # pragma: no cover - the kernel always has a free port
        "no free TCP port on 127.0.0.1: close some programs and try again",
        "127.0.0.1 上没有空闲端口：请关闭部分程序后重试",
    )


# --------------------------------------------------------------------------- files


def _path_hash(path: Path) -> str:
    return hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]


def _postgres_can_enter(path: Path) -> bool:
    """Whether the ``postgres`` user can reach and enter ``path`` (every parent included)."""
    if not _is_root():
        return os.access(path, os.X_OK)
    test = _find_tool("test") or "test"
    proc = _run(
        [test, "-d", str(path), "-a", "-x", str(path)],
        what="Checking folder access for the postgres user",
        what_zh="检查 postgres 用户的目录访问权限",
        timeout=15,
        check=False,
    )
    return proc.returncode == 0


def _chown_to_owner(path: Path) -> None:
    if _is_root():
        uid, gid = _owner_ids()
        os.chown(path, uid, gid, follow_symlinks=False)


def _make_owned_dir(path: Path, mode: int = 0o700) -> None:
    """Create ``path`` (parent must exist) owned by the cluster owner with ``mode``."""
    try:
        path.mkdir(mode=mode, exist_ok=True)
        _chown_to_owner(path)
        os.chmod(path, mode)
    except OSError as exc:
        raise _folder_error(path, exc) from exc


def _folder_error(path: Path, exc: OSError) -> DatabaseSetupError:
    return _setup_error(
        "cannot create or use a database folder: choose a writable data folder "
        "(GIS_DATA_DIR) or fix its permissions, then run `gis-service db up` again",
        "无法创建或使用数据库目录：请改用可写的数据目录（GIS_DATA_DIR）或修正其权限，"
        "然后重新运行 `gis-service db up`",
        path=str(path),
        error=str(exc),
    )


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` atomically to ``path`` with ``mode`` (never readable by others meanwhile)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.replace(tmp, path)


def _exists(path: Path) -> bool:
    """Like ``Path.exists``, but a path hidden by permissions counts as existing."""
    try:
        path.stat()
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _is_file(path: Path) -> bool:
    """Like ``Path.is_file``, but ``False`` (not an exception) when permissions hide it."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _read_postmaster_pid(pgdata: Path) -> tuple[int, int | None, Path | None] | None:
    """``(pid, port, socket_dir)`` from ``postmaster.pid``, or ``None`` when absent."""
    try:
        lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    port: int | None = None
    if len(lines) > 3 and lines[3].strip().isdigit():
        port = int(lines[3])
    sock = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
    return pid, port, sock


def _is_postgres_process(pid: int) -> bool:
    """Whether ``pid`` is a PostgreSQL server (trusted when ``/proc`` is unavailable)."""
    proc = Path("/proc")
    if not (proc / "self").exists():
        return True
    try:
        comm = (proc / str(pid) / "comm").read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return comm in {"postgres", "postmaster"}


def _log_tail(path: Path, since: int = 0, limit: int = _TRIM) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(since)
            data = fh.read()
    except OSError:
        return ""
    return _trim(data, limit)


# --------------------------------------------------------------------------- the cluster


@dataclass(frozen=True)
class _Layout:
    """Where PGDATA, the log and the default socket folder are."""

    base: Path
    relocated: bool

    @property
    def pgdata(self) -> Path:
        return self.base / "pg"

    @property
    def log_dir(self) -> Path:
        return self.base / "log"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "postgresql.log"

    @property
    def default_socket_dir(self) -> Path:
        return self.base / "run"


@dataclass
class _Meta:
    """The contents of ``<root>/cluster.json``."""

    pgdata: Path | None = None
    bindir: Path | None = None
    port: int | None = None
    socket_dir: Path | None = None

    def to_json(self) -> str:
        data = {
            "version": 1,
            "pgdata": str(self.pgdata) if self.pgdata else None,
            "bindir": str(self.bindir) if self.bindir else None,
            "port": self.port,
            "socket_dir": str(self.socket_dir) if self.socket_dir else None,
        }
        return json.dumps(data, indent=2) + "\n"


class EmbeddedCluster:
    """A private PostgreSQL + PostGIS cluster kept in a data folder.

    Example:
        >>> cluster = EmbeddedCluster(Path(".gis-data"))  # doctest: +SKIP
        >>> cluster.up().url  # doctest: +SKIP
        'postgresql+psycopg://gis:...@127.0.0.1:40123/gis'
    """

    def __init__(self, root: Path, dbname: str = "gis", *, port: int | None = None) -> None:
        """Describe a cluster; nothing is created until :meth:`up`.

        Args:
            root: The data folder (e.g. ``./.gis-data``); PGDATA is ``root/"pg"``
                unless it had to be relocated (see the module docstring).
            dbname: The database to create (letters, digits, underscore).
            port: A fixed TCP port; ``None`` picks a free one and remembers it.
        """
        self.root = Path(root).expanduser().absolute()
        self.dbname = dbname
        self.port = port

    # ----------------------------------------------------------------- public API

    def up(self, *, progress: Progress | None = None) -> ClusterInfo:
        """Create (first time), start (when stopped) and prepare the cluster.

        Idempotent: on a running cluster it only makes sure the database and the
        PostGIS extension exist, and returns the same URL.

        Args:
            progress: Called with a short human-readable line at each step.

        Returns:
            The running cluster's details.

        Raises:
            DatabaseSetupError: Anything the user must act on (missing packages,
                permissions, a server that does not start).
        """
        say = progress or (lambda _msg: None)
        if not _DBNAME_RE.match(self.dbname):
            raise _setup_error(
                "the database name may only hold letters, digits and underscores "
                "(at most 63, not starting with a digit): choose another name",
                "数据库名只能包含字母、数字和下划线（最多 63 个字符，不能以数字开头）："
                "请换一个名称",
                dbname=self.dbname,
            )
        with self._lock():
            meta = self._load_meta()
            # Find the server programs before creating any folder.
            bindir = self._bindir(self._find_layout(meta), meta)
            layout = self._prepare_layout(meta, say)
            if meta.pgdata != layout.pgdata or meta.bindir != bindir:
                meta.pgdata, meta.bindir = layout.pgdata, bindir
                self._save_meta(meta)
            if not _is_file(layout.pgdata / "PG_VERSION"):
                self._initdb(bindir, layout, say)
            self._check_reachable(layout)
            pid = self._running_pid(bindir, layout)
            if pid is None:
                self._start(bindir, layout, meta, say)
            state = _read_postmaster_pid(layout.pgdata)
            port = state[1] if state and state[1] else meta.port
            if port is None:  # pragma: no cover - postmaster.pid always has the port
                raise _setup_error(
                    "the database server runs but its port is unknown: run "
                    "`gis-service db down` and `gis-service db up`",
                    "数据库服务已运行但端口未知：请运行 `gis-service db down` 再运行 "
                    "`gis-service db up`",
                )
            sock = state[2] if state and state[2] else meta.socket_dir or layout.default_socket_dir
            if meta.port != port or meta.socket_dir != sock:
                meta.port, meta.socket_dir = port, sock
                self._save_meta(meta)
            password = self._read_password(required=True)
            assert password is not None
            self._ensure_database(port, password, say)
            return ClusterInfo(layout.pgdata, port, sock, True, self._url(password, port))

    def down(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``); nothing happens when it is not running.

        Raises:
            DatabaseSetupError: The server is running and would not stop.
        """
        if not self.root.is_dir():
            return
        with self._lock():
            self._stop("fast")

    def status(self) -> ClusterInfo:
        """Report whether the cluster runs and where it is; never raises when uninitialised.

        Returns:
            The cluster's details (``running=False``, ``port=None`` when stopped).
        """
        meta = self._load_meta()
        layout = self._find_layout(meta)
        sock = meta.socket_dir or layout.default_socket_dir
        stopped = ClusterInfo(layout.pgdata, None, sock, False, None)
        if not _is_file(layout.pgdata / "PG_VERSION"):
            return stopped
        try:
            bindir = self._bindir(layout, meta)
            pid = self._running_pid(bindir, layout)
        except DatabaseSetupError as exc:
            log.warning("pg_ctl status unavailable (%s); reading postmaster.pid", exc)
            state = _read_postmaster_pid(layout.pgdata)
            pid = state[0] if state and _is_postgres_process(state[0]) else None
        if pid is None:
            return stopped
        state = _read_postmaster_pid(layout.pgdata)
        port = state[1] if state and state[1] else meta.port
        if state and state[2]:
            sock = state[2]
        password = self._read_password(required=False)
        url = self._url(password, port) if password and port else None
        return ClusterInfo(layout.pgdata, port, sock, True, url)

    def destroy(self) -> None:
        """Stop the server (immediately) and delete the cluster's data.

        Removes PGDATA, the log and socket folders, ``cluster.json``, the password
        and the lock file; the data root itself only when it is left empty.

        Raises:
            DatabaseSetupError: The server is running and would not stop.
        """
        meta = self._load_meta()
        layout = self._find_layout(meta)
        if not self.root.is_dir() and not _exists(layout.pgdata):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            self._stop("immediate")
            meta = self._load_meta()
            layout = self._find_layout(meta)
            if layout.relocated:
                shutil.rmtree(layout.base, ignore_errors=True)
            else:
                for folder in (layout.pgdata, layout.log_dir, layout.default_socket_dir):
                    shutil.rmtree(folder, ignore_errors=True)
            sock = meta.socket_dir
            if sock is not None and sock.parent == SHORT_TMP and sock.name.startswith("gis-pg-"):
                shutil.rmtree(sock, ignore_errors=True)
            for name in (
                _META_FILE,
                _PASSWORD_FILE,
                f".{_PASSWORD_FILE}.tmp",
                f".{_META_FILE}.tmp",
            ):
                with contextlib.suppress(FileNotFoundError):
                    (self.root / name).unlink()
            with contextlib.suppress(FileNotFoundError):
                (self.root / _LOCK_FILE).unlink()
        with contextlib.suppress(OSError):
            self.root.rmdir()

    # ----------------------------------------------------------------- layout and metadata

    def _relocated_layout(self) -> _Layout:
        return _Layout(RELOCATION_BASE / _path_hash(self.root), relocated=True)

    def _find_layout(self, meta: _Meta) -> _Layout:
        """Where an existing cluster is (no side effects); the default when there is none."""
        if meta.pgdata is not None:
            return _Layout(meta.pgdata.parent, relocated=meta.pgdata.parent != self.root)
        default = _Layout(self.root, relocated=False)
        if _exists(default.pgdata):
            return default
        if _is_root():
            moved = self._relocated_layout()
            if _exists(moved.pgdata):
                return moved
        return default

    def _prepare_layout(self, meta: _Meta, say: Progress) -> _Layout:
        """Find or choose PGDATA's place and create its folders with the right owner."""
        try:
            created = not self.root.exists()
            self.root.mkdir(parents=True, exist_ok=True)
            if created:
                # The postgres user must be able to enter it; secrets inside are 0600.
                os.chmod(self.root, 0o755)  # noqa: S103
        except OSError as exc:
            raise _folder_error(self.root, exc) from exc
        layout = self._find_layout(meta)
        known = meta.pgdata is not None or _exists(layout.pgdata)
        if not known and _is_root() and not _postgres_can_enter(self.root):
            layout = self._relocated_layout()
            say(
                f"The postgres user cannot enter {self.root} (it or a parent folder is "
                f"private, e.g. mode 700); the database lives in {layout.pgdata} instead"
            )
            log.info("PGDATA relocated from %s to %s", self.root, layout.pgdata)
        if layout.relocated:
            if _exists(layout.base):
                self._check_owner(layout.base)
            elif not _exists(RELOCATION_BASE):
                try:
                    RELOCATION_BASE.mkdir(parents=True, mode=0o755)
                    os.chmod(RELOCATION_BASE, 0o755)  # noqa: S103 - holds 0700 folders
                except OSError as exc:
                    raise _folder_error(RELOCATION_BASE, exc) from exc
            _make_owned_dir(layout.base)
            if known:
                say(f"Database folder: {layout.pgdata}")
        pgdata = layout.pgdata
        if _exists(pgdata):
            self._check_owner(pgdata)
        for folder in (pgdata, layout.log_dir):
            _make_owned_dir(folder)
        return layout

    def _check_owner(self, pgdata: Path) -> None:
        uid, _ = _owner_ids()
        try:
            owner_uid = pgdata.stat().st_uid
        except PermissionError:  # hidden inside another user's private folder
            owner_uid = pgdata.parent.stat().st_uid
        if owner_uid != uid:
            try:
                owner = pwd.getpwuid(owner_uid).pw_name
            except KeyError:
                owner = str(owner_uid)
            hint = "as root" if owner == POSTGRES_OS_USER else f"as the user {owner}"
            hint_zh = "以 root" if owner == POSTGRES_OS_USER else f"以用户 {owner} "
            raise _setup_error(
                f"the database folder belongs to another user: run gis-service {hint}, "
                "or choose another data folder",
                f"数据库目录属于其他用户：请{hint_zh}身份运行 gis-service，或改用其他数据目录",
                pgdata=str(pgdata),
                owner=owner,
            )

    def _check_reachable(self, layout: _Layout) -> None:
        if _is_root() and not _postgres_can_enter(layout.pgdata):
            raise _setup_error(
                "the postgres user cannot enter the database folder: make every parent "
                "folder enterable (`chmod o+x`) or move the data folder elsewhere",
                "postgres 用户无法进入数据库目录：请让各级上级目录可进入（`chmod o+x`），"
                "或把数据目录移到别处",
                pgdata=str(layout.pgdata),
            )

    def _bindir(self, layout: _Layout, meta: _Meta) -> Path:
        version_file = layout.pgdata / "PG_VERSION"
        if _is_file(version_file):
            try:
                major = int(version_file.read_text(encoding="utf-8").strip())
            except (OSError, ValueError):
                major = 0
            if major:
                return _bindir_for_major(major, meta.bindir)
        return find_pg_bindir()

    def _load_meta(self) -> _Meta:
        path = self.root / _META_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return _Meta()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
            return _Meta()
        if not isinstance(data, dict):
            return _Meta()

        def as_path(key: str) -> Path | None:
            value = data.get(key)
            return Path(value) if isinstance(value, str) and value else None

        port = data.get("port")
        return _Meta(
            pgdata=as_path("pgdata"),
            bindir=as_path("bindir"),
            port=port if isinstance(port, int) and 0 < port < 65536 else None,
            socket_dir=as_path("socket_dir"),
        )

    def _save_meta(self, meta: _Meta) -> None:
        path = self.root / _META_FILE
        try:
            _write_private(path, meta.to_json(), mode=0o644)
        except OSError as exc:
            raise _folder_error(path, exc) from exc

    def _read_password(self, *, required: bool) -> str | None:
        path = self.root / _PASSWORD_FILE
        try:
            password = path.read_text(encoding="utf-8").strip()
        except OSError:
            password = ""
        if password:
            return password
        if not required:
            return None
        raise _setup_error(
            "the database password file is missing from the data folder: restore it, "
            "or move the data folder away to start a new, empty database",
            "数据目录中缺少数据库密码文件：请恢复该文件，或把数据目录移走以新建一个空数据库",
            path=str(path),
        )

    def _url(self, password: str, port: int) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{password}@127.0.0.1:{port}/{self.dbname}"

    @contextmanager
    def _lock(self, timeout: float = 120.0) -> Iterator[None]:
        """Serialise up/down/destroy between processes sharing this data root."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise _folder_error(self.root, exc) from exc
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _setup_error(
                            "another gis-service command is setting up this database: "
                            "wait for it to finish and try again",
                            "另一个 gis-service 命令正在操作此数据库：请等待其完成后重试",
                        ) from None
                    time.sleep(0.2)
            yield
        finally:
            os.close(fd)

    # ----------------------------------------------------------------- server programs

    def _initdb(self, bindir: Path, layout: _Layout, say: Progress) -> None:
        pgdata = layout.pgdata
        if any(pgdata.iterdir()):
            raise _setup_error(
                "the database folder exists but holds no PostgreSQL cluster: move it away "
                "(or empty it) and run `gis-service db up` again",
                "数据库目录已存在但不是 PostgreSQL 集群：请将其移走（或清空）后重新运行 "
                "`gis-service db up`",
                pgdata=str(pgdata),
            )
        say(f"Creating a PostgreSQL cluster in {pgdata}")
        password = secrets.token_urlsafe(24)
        try:
            _write_private(self.root / _PASSWORD_FILE, password + "\n")
            pwdir = Path(tempfile.mkdtemp(prefix=".pw-", dir=layout.base))
        except OSError as exc:
            raise _folder_error(self.root, exc) from exc
        try:
            pwfile = pwdir / "pwfile"
            _write_private(pwfile, password + "\n")
            _chown_to_owner(pwdir)
            _chown_to_owner(pwfile)
            for locale in ("C.UTF-8", "C"):
                proc = _run(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(pgdata),
                        "-U",
                        SUPERUSER,
                        "--auth=scram-sha-256",
                        f"--pwfile={pwfile}",
                        "--encoding=UTF8",
                        f"--locale={locale}",
                    ],
                    what="Creating the database cluster",
                    what_zh="创建数据库集群",
                    timeout=300,
                    check=False,
                )
                if proc.returncode == 0:
                    break
                output = (proc.stderr + proc.stdout).lower()
                if locale != "C" and "locale" in output:
                    log.info("locale C.UTF-8 unavailable, retrying initdb with --locale=C")
                    for child in pgdata.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child)
                        else:
                            child.unlink()
                    continue
                raise _setup_error(
                    "creating the database cluster failed: check free disk space and the "
                    "data folder's permissions (initdb's message is in the log), then "
                    "run `gis-service db up` again",
                    "创建数据库集群失败：请检查磁盘空间和数据目录权限"
                    "（initdb 的输出已写入日志），然后重新运行 `gis-service db up`",
                    returncode=proc.returncode,
                    stdout=_trim(proc.stdout),
                    stderr=_trim(proc.stderr),
                    pgdata=str(pgdata),
                )
        finally:
            shutil.rmtree(pwdir, ignore_errors=True)

    def _write_server_conf(self, layout: _Layout) -> None:
        """Write ``gis_service.conf`` and make ``postgresql.conf`` include it."""
        conf = layout.pgdata / "postgresql.conf"
        try:
            text = conf.read_text(encoding="utf-8")
            if _INCLUDE_LINE not in text:
                with conf.open("a", encoding="utf-8") as fh:
                    fh.write(
                        "\n# Settings managed by gis-service (ALTER SYSTEM overrides them)\n"
                        f"{_INCLUDE_LINE}\n"
                    )
            lines = ["# Written by gis-service at every `db up`; edits here are overwritten."]
            lines += [f"{key} = '{value}'" for key, value in SERVER_SETTINGS.items()]
            target = layout.pgdata / _CONF_FILE
            _write_private(target, "\n".join(lines) + "\n")
            _chown_to_owner(target)
        except OSError as exc:
            raise _folder_error(conf, exc) from exc

    def _socket_dir(self, layout: _Layout, meta: _Meta) -> Path:
        uid, _ = _owner_ids()
        recorded = meta.socket_dir
        if recorded is not None and recorded != layout.default_socket_dir:
            with contextlib.suppress(OSError):
                st = recorded.lstat()
                if stat.S_ISDIR(st.st_mode) and st.st_uid == uid:
                    return recorded
        candidate = layout.default_socket_dir
        if len(os.fsencode(candidate / ".s.PGSQL.65535")) < _SOCKET_PATH_LIMIT:
            _make_owned_dir(candidate)
            return candidate
        try:
            short = Path(tempfile.mkdtemp(prefix="gis-pg-", dir=SHORT_TMP))
            _chown_to_owner(short)
        except OSError as exc:
            raise _folder_error(SHORT_TMP, exc) from exc
        return short

    def _running_pid(self, bindir: Path, layout: _Layout) -> int | None:
        """The postmaster's pid per ``pg_ctl status``, cross-checked with ``/proc``."""
        if not _is_file(layout.pgdata / "postmaster.pid"):
            return None
        proc = _run(
            [str(bindir / "pg_ctl"), "status", "-D", str(layout.pgdata)],
            what="Checking the database server",
            what_zh="检查数据库服务",
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            return None
        match = re.search(r"PID:\s*(\d+)", proc.stdout)
        if match is None:
            return None
        pid = int(match.group(1))
        return pid if _is_postgres_process(pid) else None

    def _choose_port(self, meta: _Meta, exclude: set[int]) -> int:
        if self.port is not None:
            if not _port_is_free(self.port):
                raise _setup_error(
                    f"port {self.port} on 127.0.0.1 is already in use: choose another port, "
                    "or leave it unset to pick a free one",
                    f"127.0.0.1 的端口 {self.port} 已被占用：请换一个端口，或不指定端口以自动选择",
                )
            return self.port
        if meta.port is not None and meta.port not in exclude and _port_is_free(meta.port):
            return meta.port
        return free_port()

    def _start(self, bindir: Path, layout: _Layout, meta: _Meta, say: Progress) -> None:
        pgdata = layout.pgdata
        state = _read_postmaster_pid(pgdata)
        if state is not None and not _is_postgres_process(state[0]):
            # Left by a crash or reboot, and its pid now belongs to another process of
            # the same user, which would make the postmaster refuse to start.
            with contextlib.suppress(FileNotFoundError):
                (pgdata / "postmaster.pid").unlink()
        sock = self._socket_dir(layout, meta)
        self._write_server_conf(layout)
        log_file = layout.log_file
        with contextlib.suppress(OSError):
            if log_file.stat().st_size > _LOG_ROTATE_BYTES:
                os.replace(log_file, log_file.with_name(log_file.name + ".1"))
        tried: set[int] = set()
        for attempt in range(4):
            port = self._choose_port(meta, tried)
            tried.add(port)
            say(f"Starting PostgreSQL on 127.0.0.1:{port}")
            try:
                log_start = log_file.stat().st_size
            except OSError:
                log_start = 0
            options = (
                f"-p {port} -c listen_addresses=127.0.0.1 -k {shlex.quote(str(sock))} "
                "-c unix_socket_permissions=0700"
            )
            proc = _run(
                [
                    str(bindir / "pg_ctl"),
                    "start",
                    "-D",
                    str(pgdata),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(log_file),
                    "-o",
                    options,
                ],
                what="Starting the database server",
                what_zh="启动数据库服务",
                timeout=120,
                check=False,
            )
            if proc.returncode == 0:
                meta.port, meta.socket_dir = port, sock
                self._save_meta(meta)
                return
            tail = _log_tail(log_file, log_start)
            retry = attempt < 3 and (
                (self.port is None and ("could not bind" in tail or "already in use" in tail))
                or "is still in use" in tail  # shared memory of a killed server's children
            )
            if retry:
                log.info("start on port %s failed, retrying: %s", port, tail[-300:])
                time.sleep(0.5 + attempt)
                continue
            raise _setup_error(
                "the embedded PostgreSQL did not start: read the server log "
                "(log/postgresql.log next to the database folder), fix the cause and run "
                "`gis-service db up` again",
                "内置 PostgreSQL 未能启动：请查看服务日志（数据库目录旁的 log/postgresql.log），"
                "排除原因后重新运行 `gis-service db up`",
                returncode=proc.returncode,
                stdout=_trim(proc.stdout),
                stderr=_trim(proc.stderr),
                log_file=str(log_file),
                log_tail=tail,
            )

    def _stop(self, mode: str) -> None:
        meta = self._load_meta()
        layout = self._find_layout(meta)
        if not _is_file(layout.pgdata / "postmaster.pid"):
            return
        bindir = self._bindir(layout, meta)
        if self._running_pid(bindir, layout) is None:
            return
        proc = _run(
            [
                str(bindir / "pg_ctl"),
                "stop",
                "-D",
                str(layout.pgdata),
                "-m",
                mode,
                "-w",
                "-t",
                "120",
            ],
            what="Stopping the database server",
            what_zh="停止数据库服务",
            timeout=180,
            check=False,
        )
        if proc.returncode != 0 and self._running_pid(bindir, layout) is not None:
            raise _setup_error(
                "the embedded PostgreSQL did not stop: wait a minute and run "
                "`gis-service db down` again",
                "内置 PostgreSQL 未能停止：请稍候一分钟后再次运行 `gis-service db down`",
                returncode=proc.returncode,
                stdout=_trim(proc.stdout),
                stderr=_trim(proc.stderr),
                log_file=str(layout.log_file),
            )

    # ----------------------------------------------------------------- database and PostGIS

    def _connect(self, port: int, password: str, dbname: str) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                host="127.0.0.1",
                port=port,
                user=SUPERUSER,
                password=password,
                dbname=dbname,
                connect_timeout=10,
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            if "password authentication failed" in str(exc):
                raise _setup_error(
                    "the database password file does not match the cluster: restore the "
                    "right password file, or move the data folder away to start a new, "
                    "empty database",
                    "数据库密码文件与集群不匹配：请恢复正确的密码文件，或把数据目录移走以新建空数据库",
                    error=str(exc),
                ) from exc
            raise _setup_error(
                f"cannot connect to the embedded database on 127.0.0.1:{port}: run "
                "`gis-service db down` and `gis-service db up`, and read the server log "
                "if it persists",
                f"无法连接内置数据库 127.0.0.1:{port}：请运行 `gis-service db down` 和 "
                "`gis-service db up`；若仍失败请查看服务日志",
                error=str(exc),
            ) from exc

    def _ensure_database(self, port: int, password: str, say: Progress) -> None:
        with self._connect(port, password, "postgres") as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)
            ).fetchone()
            if exists is None:
                say(f"Creating the database {self.dbname}")
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} ENCODING 'UTF8'").format(
                            sql.Identifier(self.dbname)
                        )
                    )
        with self._connect(port, password, self.dbname) as conn:
            present = conn.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'postgis'"
            ).fetchone()
            if present is not None:
                return
            say("Enabling PostGIS")
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except psycopg.errors.UniqueViolation:  # a concurrent `up` created it first
                return
            except psycopg.Error as exc:
                server_version = conn.info.server_version // 10000
                if (
                    isinstance(
                        exc,
                        psycopg.errors.FeatureNotSupported
                        | psycopg.errors.UndefinedFile
                        | psycopg.errors.UndefinedObject,
                    )
                    or "postgis" in str(exc).lower()
                ):
                    err = _no_postgis_error(server_version)
                    err.extra["error"] = str(exc)
                    raise err from exc
                raise _setup_error(
                    "enabling PostGIS failed: read the server log, fix the cause and run "
                    "`gis-service db up` again",
                    "启用 PostGIS 失败：请查看服务日志，排除原因后重新运行 `gis-service db up`",
                    error=str(exc),
                ) from exc


@contextmanager
def temporary_cluster(dbname: str = "gis_test") -> Iterator[ClusterInfo]:
    """A throw-away running cluster with PostGIS, removed on exit (for the test suite).

    The cluster lives in a fresh ``gis-test-*`` folder of the temp directory, opened
    to 0755 so the ``postgres`` user can enter it when running as root (and
    relocated like any other cluster when a parent is private).

    Args:
        dbname: The database to create.

    Yields:
        The running cluster's details.
    """
    root = Path(tempfile.mkdtemp(prefix="gis-test-"))
    os.chmod(root, 0o755)  # noqa: S103 - the postgres user must enter it when we are root
    cluster = EmbeddedCluster(root, dbname)
    try:
        yield cluster.up()
    finally:
        try:
            cluster.destroy()
        finally:
            shutil.rmtree(root, ignore_errors=True)
