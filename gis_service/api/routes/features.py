"""OGC API Features under ``/ogc`` (``/`` is the web map), in GeoJSON and small HTML pages.

Landing page, conformance, collections, queryables, items and item.

Collections are the table layers of the layer registry; identifiers never come from the
request. The items endpoint takes one query parameter per published property, so it checks
its own query string (``features.params``) instead of the generic strict route.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from gis_service.api.deps import CurrentUser, DbDep, SettingsDep
from gis_service.api.routes import router
from gis_service.errors import NotFound
from gis_service.features import documents as docs
from gis_service.features import items as fitems
from gis_service.features.params import ItemsQuery, bad, parse_items
from gis_service.registry import LayerSpec, load_registry

api = router("features")
P = docs.PREFIX
CollectionId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,62}$", max_length=63)]
Fid = Annotated[int, Path(ge=1, le=2**62)]


def _base(settings: SettingsDep) -> str:
    return settings.api.public_url.rstrip("/")


def _layer(collection_id: str) -> LayerSpec:
    spec = load_registry().get(collection_id)
    if not docs.servable(spec):
        raise NotFound(detail="no such collection", detail_zh="图层不存在")
    return spec


def _wants_html(request: Request, f: str | None) -> bool:
    if f is not None:
        if f not in ("json", "html"):
            raise bad("f", "json or html")
        return f == "html"
    accept = request.headers.get("accept", "")
    return accept.startswith("text/html")


def _json(
    doc: dict[str, Any], media: str = docs.JSON, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(doc), media_type=media, headers=headers)


@api.get(P + "/", include_in_schema=False)
@api.get(P, summary="OGC API Features landing page")
async def landing(
    request: Request, user: CurrentUser, settings: SettingsDep, f: str | None = None
) -> Response:
    """Links to the conformance, the collections and the API description."""
    doc = docs.landing(_base(settings))
    if _wants_html(request, f):
        return HTMLResponse(docs.page(doc["title"], docs.links_html(doc["links"])))
    return _json(doc)


@api.get(P + "/conformance", summary="OGC conformance classes")
async def conformance(request: Request, user: CurrentUser, f: str | None = None) -> Response:
    """Part 1 Core/GeoJSON/HTML/OAS30, Part 2 CRS, Part 3 filter with Basic CQL2 text."""
    doc = {"conformsTo": docs.CONFORMANCE}
    if _wants_html(request, f):
        items = "".join(f"<li>{c}</li>" for c in docs.CONFORMANCE)
        return HTMLResponse(docs.page("Conformance", f"<ul>{items}</ul>"))
    return _json(doc)


@api.get(P + "/collections", summary="The published layers as OGC collections")
async def collections(
    request: Request, user: CurrentUser, db: DbDep, settings: SettingsDep, f: str | None = None
) -> Response:
    """Every table layer of the registry, with the caller's area as the spatial extent."""
    html = _wants_html(request, f)
    async with db.tx() as conn:
        extent = await fitems.scope_extent(conn, user)
    doc = docs.collections(_base(settings), list(load_registry()), extent)
    return HTMLResponse(docs.collections_html(doc)) if html else _json(doc)


@api.get(P + "/collections/{collection_id}", summary="One collection")
async def collection(  # noqa: PLR0917 - FastAPI injects by parameter
    collection_id: CollectionId,
    request: Request,
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
    f: str | None = None,
) -> Response:
    """Metadata of one layer (404 for anything not in the registry)."""
    spec = _layer(collection_id)
    html = _wants_html(request, f)
    async with db.tx() as conn:
        extent = await fitems.scope_extent(conn, user)
    doc = docs.collection(_base(settings), spec, extent)
    return HTMLResponse(docs.collection_html(doc, spec)) if html else _json(doc)


@api.get(P + "/collections/{collection_id}/queryables", summary="Queryable properties")
async def queryables(
    collection_id: CollectionId, user: CurrentUser, settings: SettingsDep
) -> Response:
    """The properties usable in ``filter``, ``sortby`` and property parameters."""
    doc = docs.queryables(_base(settings), _layer(collection_id), user.sees_pii)
    return _json(doc, "application/schema+json")


def _feature(fid: int, geometry: str | None, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": fid,
        "geometry": orjson.Fragment(geometry) if geometry else None,
        "properties": props,
    }


async def items(
    collection_id: CollectionId,
    request: Request,
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
) -> Response:
    """Features of a collection, a page at a time.

    bbox (+bbox-crs), limit/offset with next links, datetime, property filters, CQL2-text
    ``filter``, ``sortby``, ``properties`` and ``crs`` (CRS84, EPSG:4490, EPSG:3857).
    """
    spec = _layer(collection_id)
    q = parse_items(spec, request.query_params.multi_items(), sees_pii=user.sees_pii)
    if "f" not in request.query_params and request.headers.get("accept", "").startswith(
        "text/html"
    ):
        q.fmt = "html"
    async with db.tx() as conn:
        page = await fitems.read_items(conn, user, spec, q)
    more = len(page.features) == q.limit and (
        page.matched is None or q.offset + q.limit < page.matched
    )
    fc: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [_feature(*f) for f in page.features],
        "numberReturned": len(page.features),
        "links": docs.item_links(
            _base(settings), spec, q.echo, limit=q.limit, offset=q.offset, more=more
        ),
    }
    if page.matched is not None:
        fc["numberMatched"] = page.matched
    if q.fmt == "html":
        return HTMLResponse(docs.items_html(spec, fc))
    return _json(fc, docs.GEOJSON, {"Content-Crs": f"<{q.crs}>"})


api.add_api_route(
    P + "/collections/{collection_id}/items",
    items,
    methods=["GET"],
    summary="Features of a collection",
    route_class_override=APIRoute,  # dynamic property parameters: checked by parse_items
    response_class=Response,
)


@api.get(P + "/collections/{collection_id}/items/{fid}", summary="One feature")
async def item(  # noqa: PLR0917 - FastAPI injects by parameter
    collection_id: CollectionId,
    fid: Fid,
    request: Request,
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
    crs: str | None = None,
    f: str | None = None,
) -> Response:
    """One feature by id (404 when absent or outside the caller's area)."""
    spec = _layer(collection_id)
    query = [("crs", crs)] if crs else []
    q: ItemsQuery = parse_items(spec, query, sees_pii=user.sees_pii)
    html = _wants_html(request, f)
    async with db.tx() as conn:
        found = await fitems.read_item(conn, user, spec, fid, q)
    doc = _feature(*found)
    url = f"{_base(settings)}{P}/collections/{spec.name}"
    doc["links"] = [
        {"href": f"{url}/items/{fid}", "rel": "self", "type": docs.GEOJSON},
        {"href": url, "rel": "collection", "type": docs.JSON},
    ]
    if html:
        return HTMLResponse(docs.item_html(spec, fid, found[2]))
    return _json(doc, docs.GEOJSON, {"Content-Crs": f"<{q.crs}>"})
