"""The HTTP-level tile path (``api.tile_protocol``) under a real uvicorn server.

Every answer is compared with the same request through the ASGI stack (the TestClient on the
same database): same status, bytes and headers but the request id, and the app's own checks
(Host, a caller's request id, refusals worded by the app) still apply.
"""

from __future__ import annotations

import gzip
import http.client
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.api.tile_protocol import TileHttpProtocol
from gis_service.settings import Settings
from gis_service.tiles.service import TileService
from tests.fixtures import auth
from tests.test_tiles import CENTRE, FUTIAN, decode, tile_of

#: Headers that legitimately differ between two answers.
VOLATILE = {"x-request-id", "x-tile-cache", "date", "server"}
#: http.client asks for no encoding; the TestClient asks for gzip unless told.
IDENTITY = {"Accept-Encoding": "identity"}
PATH = "/tiles/grids,enterprises/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 14))


class Served:
    """A uvicorn server with :class:`TileHttpProtocol` in a thread, and its app."""

    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, http=TileHttpProtocol, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        self.service: TileService = app.state.tiles

    def get(self, path: str, **headers: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        conn.close()
        return response

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def served(demo_url: str, settings: Settings) -> Iterator[Served]:
    server = Served(create_app(settings, database_url=demo_url))
    yield server
    server.stop()


@pytest.fixture
def fresh(served: Served) -> TileService:
    """The served app's tile service with an empty cache and no Host learned yet."""
    served.service.cache.clear()
    served.service.checked_hosts.clear()
    return served.service


def _same(direct: Any, asgi: Any) -> None:
    assert direct.status == asgi.status_code
    assert direct.body == asgi.content
    mine = {k.lower(): v for k, v in direct.getheaders() if k.lower() not in VOLATILE}
    assert mine == {k: v for k, v in asgi.headers.items() if k not in VOLATILE}


def _direct(served: Served, path: str, **headers: str) -> Any:
    """One request that the HTTP-level path must answer (a Host it learned beforehand)."""
    count = served.service.direct_served
    answer = served.get(path, **headers)
    assert served.service.direct_served == count + 1, path
    return answer


def test_first_request_learns_the_host_then_tiles_skip_the_stack(
    served: Served, fresh: TileService, client: TestClient
) -> None:
    count = fresh.direct_served
    first = served.get(PATH, **auth("national_admin"))
    assert first.status == 200
    assert fresh.direct_served == count  # unknown Host: the app's checks ran
    assert fresh.checked_hosts == {f"127.0.0.1:{served.port}".encode()}
    again = _direct(served, PATH, **auth("national_admin"))
    assert again.body == first.body
    assert re.fullmatch(r"[0-9a-f]{32}", again.getheader("x-request-id"))
    fresh.cache.clear()
    asgi = client.get(PATH, headers={**auth("national_admin"), **IDENTITY})
    fresh.cache.clear()
    _same(_direct(served, PATH, **auth("national_admin")), asgi)
    layers = decode(again.body)
    assert "grids" in layers  # and the enterprises layer when the tile holds any


@pytest.mark.parametrize(
    ("login", "where", "status"),
    [("a_surveyor", CENTRE, 200), ("b_surveyor", CENTRE, 204), ("b_surveyor", FUTIAN, 200)],
)
def test_scoped_callers_get_their_own_tiles(
    served: Served,
    fresh: TileService,
    client: TestClient,
    login: str,
    where: tuple[float, float],
    status: int,
) -> None:
    path = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*where, 14))
    served.get(path, **auth("national_admin"))  # learns the Host
    fresh.cache.clear()
    asgi = client.get(path, headers={**auth(login), **IDENTITY})
    assert asgi.status_code == status
    fresh.cache.clear()
    _same(_direct(served, path, **auth(login)), asgi)
    # Warm (the cache is on in these tests): the hit is the same bytes.
    hit = _direct(served, path, **auth(login))
    assert hit.getheader("x-tile-cache") == "hit"
    assert hit.body == asgi.content


def test_etag_gzip_and_refusals(served: Served, fresh: TileService, client: TestClient) -> None:
    first = served.get(PATH, **auth("national_admin"))
    etag = first.getheader("etag")
    not_modified = _direct(served, PATH, **auth("national_admin"), **{"If-None-Match": etag})
    assert not_modified.status == 304
    assert not_modified.body == b""
    zipped = _direct(served, PATH, **auth("national_admin"), **{"Accept-Encoding": "gzip"})
    assert zipped.getheader("content-encoding") == "gzip"
    assert gzip.decompress(zipped.body) == first.body
    # Refused after the checks: the app's problem body, with this request's id.
    count = fresh.direct_served
    refused = served.get(PATH, Authorization="Bearer gis_test_nobody")
    assert refused.status == 401
    assert fresh.direct_served == count
    body = refused.body.decode()
    assert refused.getheader("x-request-id") in body
    assert refused.getheader("content-type") == "application/problem+json"
    asgi = client.get(PATH, headers={"Authorization": "Bearer gis_test_nobody"})
    assert asgi.status_code == 401
    assert asgi.json()["code"] in body
    anonymous = served.get(PATH)
    assert anonymous.status == client.get(PATH).status_code == 401


def test_other_requests_take_the_app_stack(served: Served, fresh: TileService) -> None:
    served.get(PATH, **auth("national_admin"))  # learns the Host
    count = fresh.direct_served
    own_id = served.get(PATH, **auth("national_admin"), **{"X-Request-ID": "tile-req-0002"})
    assert own_id.getheader("x-request-id") == "tile-req-0002"
    evil = served.get(PATH, **auth("national_admin"), Host="evil.example.com")
    assert evil.status == 400
    assert served.get(PATH + "?x=1", **auth("national_admin")).status == 400
    assert served.get("/tiles/nosuch/14/1/1.mvt", **auth("national_admin")).status == 404
    assert served.get("/tiles/grids/99/1/1.mvt", **auth("national_admin")).status in {400, 404}
    assert fresh.direct_served == count
    assert fresh.checked_hosts == {f"127.0.0.1:{served.port}".encode()}


def test_keep_alive_pipelining_and_close(served: Served, fresh: TileService) -> None:
    served.get(PATH, **auth("national_admin"))  # learns the Host
    token = auth("national_admin")["Authorization"]
    one = (
        f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nAuthorization: {token}\r\n\r\n"
    ).encode()
    last = one.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    count = fresh.direct_served
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(one + one + last)  # pipelined: answered in order, then closed
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert data.lower().count(b"connection: close\r\n") == 1
    assert fresh.direct_served == count + 3
    length = int(re.search(rb"content-length: (\d+)", data).group(1))  # type: ignore[union-attr]
    bodies = [part[:length] for part in data.split(b"\r\n\r\n")[1:]]
    assert len(set(bodies)) == 1


def test_cache_off_tiles_are_verified_like_the_asgi_path(
    demo_url: str, settings: Settings, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cache off (the equal-content benchmark): remembered callers, same bytes, fresh refusals."""
    monkeypatch.setenv("GIS_TILES_CACHE_MB", "0")
    server = Served(create_app(settings, database_url=demo_url))
    try:
        service = server.service
        assert not service.cache.enabled
        deadline = time.monotonic() + 20
        while service.configured < service.settings.pool_min:  # set-ups forget callers
            assert time.monotonic() < deadline, "tile pool did not open"
            time.sleep(0.05)
        server.get(PATH, **auth("a_surveyor"))  # learns the Host (and the caller)
        speculated, configured = service.speculated, service.configured
        direct = _direct(server, PATH, **auth("a_surveyor"))
        # The remembered caller was used, unless a tile connection set up meanwhile forgot it.
        assert service.speculated == speculated + 1 or service.configured > configured
        asgi = client.get(PATH, headers={**auth("a_surveyor"), **IDENTITY})
        assert direct.status == asgi.status_code == 200
        assert direct.body == asgi.content
        assert direct.getheader("x-tile-cache") == "miss"
        assert server.get(PATH, **auth("disabled_user")).status == 401
    finally:
        server.stop()
