"""The embedded PostgreSQL + PostGIS cluster, against real servers (no mocks)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gis_service.db.cluster import (
    RELOCATION_BASE,
    ClusterInfo,
    EmbeddedCluster,
    find_pg_bindir,
    free_port,
    temporary_cluster,
)

IS_ROOT = os.geteuid() == 0


def _libpq_url(info: ClusterInfo) -> str:
    assert info.url is not None
    return info.url.replace("postgresql+psycopg://", "postgresql://", 1)


def _postmaster_pid(info: ClusterInfo) -> int:
    return int((info.data_dir / "postmaster.pid").read_text().splitlines()[0])


def _open_root() -> Path:
    """A data root the postgres user can enter (pytest's own tmp dirs are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="gis-test-"))
    root.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    root = _open_root()
    cl = EmbeddedCluster(root / ".gis-data", "gis_unit")
    try:
        yield cl
    finally:
        cl.destroy()
        shutil.rmtree(root, ignore_errors=True)


def test_find_pg_bindir_has_server_programs() -> None:
    bindir = find_pg_bindir()
    for program in ("initdb", "pg_ctl", "postgres"):
        assert os.access(bindir / program, os.X_OK)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_status_of_uninitialised_cluster_does_not_raise(tmp_path: Path) -> None:
    cl = EmbeddedCluster(tmp_path / "nothing-here")
    info = cl.status()
    assert not info.running
    assert info.port is None
    assert info.url is None
    cl.down()  # not running: no error
    assert not (tmp_path / "nothing-here").exists()


def test_up_gives_a_working_postgis_database(cluster: EmbeddedCluster) -> None:
    steps: list[str] = []
    info = cluster.up(progress=steps.append)
    assert info.running
    assert info.port is not None
    assert info.url == (
        f"postgresql+psycopg://gis:{(cluster.root / 'password').read_text().strip()}"
        f"@127.0.0.1:{info.port}/gis_unit"
    )
    assert steps, "progress was never called"
    with psycopg.connect(_libpq_url(info)) as conn:
        version = conn.execute("SELECT postgis_full_version()").fetchone()
        assert version is not None
        assert "POSTGIS=" in version[0]
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('fsync', 'jit', 'max_parallel_workers_per_gather', 'listen_addresses')"
            ).fetchall()
        )
        assert settings == {
            "fsync": "on",
            "jit": "off",
            "max_parallel_workers_per_gather": "0",
            "listen_addresses": "127.0.0.1",
        }
    # the password file is private to the invoking user
    pw = (cluster.root / "password").stat()
    assert stat.S_IMODE(pw.st_mode) == 0o600
    assert pw.st_uid == os.geteuid()
    # PGDATA is 0700 and owned by whoever runs the server
    pg = info.data_dir.stat()
    assert stat.S_IMODE(pg.st_mode) == 0o700
    if IS_ROOT:
        assert info.data_dir.owner() == "postgres"
    else:
        assert pg.st_uid == os.geteuid()
    meta = json.loads((cluster.root / "cluster.json").read_text())
    assert meta["port"] == info.port
    assert Path(meta["pgdata"]) == info.data_dir == cluster.root / "pg"
    # no password file left for initdb
    assert not list(info.data_dir.parent.glob(".pw-*"))


def test_second_up_reuses_the_running_server(cluster: EmbeddedCluster) -> None:
    first = cluster.up()
    pid = _postmaster_pid(first)
    second = cluster.up()
    assert second == first
    assert _postmaster_pid(second) == pid


def test_status_reports_running_then_stopped(cluster: EmbeddedCluster) -> None:
    info = cluster.up()
    status = cluster.status()
    assert status.running
    assert status.port == info.port
    assert status.url == info.url
    assert status.data_dir == info.data_dir
    cluster.down()
    stopped = cluster.status()
    assert not stopped.running
    assert stopped.port is None
    assert stopped.url is None
    cluster.down()  # already stopped: no error


def test_up_after_down_reuses_the_free_port(cluster: EmbeddedCluster) -> None:
    port = cluster.up().port
    cluster.down()
    again = cluster.up()
    assert again.running
    assert again.port == port
    with psycopg.connect(_libpq_url(again)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_up_picks_another_port_when_the_remembered_one_is_taken(
    cluster: EmbeddedCluster,
) -> None:
    port = cluster.up().port
    assert port is not None
    cluster.down()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        # SO_REUSEADDR: the server's side of a closed connection may sit in TIME_WAIT
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        info = cluster.up()
        assert info.port != port
    assert json.loads((cluster.root / "cluster.json").read_text())["port"] == info.port
    with psycopg.connect(_libpq_url(info)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_up_restarts_after_a_crash_left_a_stale_pid_file(cluster: EmbeddedCluster) -> None:
    info = cluster.up()
    pid = _postmaster_pid(info)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (info.data_dir / "postmaster.pid").exists(), "a crash leaves postmaster.pid behind"
    assert not cluster.status().running
    again = cluster.up()
    assert again.running
    assert _postmaster_pid(again) != pid
    with psycopg.connect(_libpq_url(again)) as conn:
        assert conn.execute("SELECT postgis_lib_version()").fetchone() is not None


@pytest.mark.skipif(not IS_ROOT, reason="the postgres-user fallback only applies as root")
def test_root_falls_back_when_postgres_cannot_enter_a_0700_parent() -> None:
    private = Path(tempfile.mkdtemp(prefix="gis-private-"))
    private.chmod(0o700)
    root = private / "checkout" / ".gis-data"
    cl = EmbeddedCluster(root, "gis_reloc")
    steps: list[str] = []
    try:
        info = cl.up(progress=steps.append)
        assert info.running
        assert info.data_dir.is_relative_to(RELOCATION_BASE)
        assert not info.data_dir.is_relative_to(private)
        assert info.data_dir.owner() == "postgres"
        assert any(str(info.data_dir) in step for step in steps), steps
        meta = json.loads((root / "cluster.json").read_text())
        assert Path(meta["pgdata"]) == info.data_dir
        assert stat.S_IMODE((root / "password").stat().st_mode) == 0o600
        with psycopg.connect(_libpq_url(info)) as conn:
            assert conn.execute("SELECT postgis_lib_version()").fetchone() is not None
        # a fresh object finds the relocated cluster through cluster.json
        other = EmbeddedCluster(root, "gis_reloc")
        assert other.status() == info
        assert other.up().url == info.url
        other.down()
        assert not cl.status().running
        assert cl.status().data_dir == info.data_dir
    finally:
        cl.destroy()
        shutil.rmtree(private, ignore_errors=True)
    assert not info.data_dir.exists()


def test_long_data_path_puts_the_socket_in_a_private_tmp_folder() -> None:
    base = _open_root()
    root = base / ("long-folder-name-" * 6) / ".gis-data"
    root.parent.mkdir()
    cl = EmbeddedCluster(root, "gis_long")
    try:
        info = cl.up()
        assert len(os.fsencode(root / "run" / ".s.PGSQL.65535")) >= 100
        assert info.socket_dir.parent == Path("/tmp")
        assert (info.socket_dir / f".s.PGSQL.{info.port}").is_socket()
        assert stat.S_IMODE(info.socket_dir.stat().st_mode) == 0o700
        assert cl.up().socket_dir == info.socket_dir
    finally:
        cl.destroy()
        shutil.rmtree(base, ignore_errors=True)
    assert not info.socket_dir.exists()


def test_temporary_cluster_is_removed_afterwards() -> None:
    with temporary_cluster() as info:
        assert info.running
        assert info.url is not None
        assert info.url.endswith("/gis_test")
        with psycopg.connect(_libpq_url(info)) as conn:
            assert conn.execute("SELECT postgis_full_version()").fetchone() is not None
        data_dir = info.data_dir
    assert not data_dir.exists()
    assert info.port is not None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", info.port))  # the server is gone
