"""OGC API Features documents (landing page, conformance, collections) and their HTML.

Pure builders: they take the public base URL and registry records and return JSON-ready
dicts or small HTML pages. Links are built from the configured public URL, never from the
request's Host header (BAD_INPUTS E9).
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from gis_service.features.params import CRS84, CRS_URIS, EPSG4490, MAX_LIMIT, published
from gis_service.registry import LayerSpec
from gis_service.types import CHINA_BBOX

#: Where the OGC API lives; ``/`` is the web map, so the landing page is ``/ogc``.
PREFIX = "/ogc"
GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
]
_JSON_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


def servable(spec: LayerSpec) -> bool:
    """Table layers are collections; function layers (tiles only) are not."""
    return spec.table is not None


def _link(href: str, rel: str, mime: str, title: str | None = None) -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": mime}
    if title:
        out["title"] = title
    return out


def landing(base: str) -> dict[str, Any]:
    """The landing page (``/ogc``)."""
    root = base + PREFIX
    return {
        "title": "gis-service OGC API Features",
        "description": "应急管理局 GIS 风险与网格服务的图层（OGC API – Features）",
        "links": [
            _link(root, "self", JSON, "this document"),
            _link(root + "?f=html", "alternate", HTML, "this document as HTML"),
            _link(
                base + "/openapi.json",
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
            ),
            _link(base + "/docs", "service-doc", HTML),
            _link(root + "/conformance", "conformance", JSON),
            _link(root + "/collections", "data", JSON),
        ],
    }


def collection(
    base: str, spec: LayerSpec, extent: tuple[float, float, float, float] | None
) -> dict[str, Any]:
    """One collection's metadata."""
    url = f"{base}{PREFIX}/collections/{spec.name}"
    doc: dict[str, Any] = {
        "id": spec.name,
        "title": spec.title,
        "description": spec.description or spec.title_en,
        "itemType": "feature",
        "crs": list(CRS_URIS),
        "storageCrs": EPSG4490,
        "extent": {"spatial": {"bbox": [list(extent or CHINA_BBOX)], "crs": CRS84}},
        "links": [
            _link(url, "self", JSON),
            _link(url + "?f=html", "alternate", HTML),
            _link(url + "/items", "items", GEOJSON, spec.title),
            _link(url + "/items?f=html", "items", HTML, spec.title),
            _link(
                url + "/queryables",
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "application/schema+json",
            ),
        ],
    }
    if spec.time_column:
        doc["extent"]["temporal"] = {"interval": [[None, None]]}
    return doc


def collections(
    base: str, specs: list[LayerSpec], extent: tuple[float, float, float, float] | None
) -> dict[str, Any]:
    """``/ogc/collections``."""
    root = f"{base}{PREFIX}/collections"
    return {
        "links": [_link(root, "self", JSON), _link(root + "?f=html", "alternate", HTML)],
        "collections": [collection(base, s, extent) for s in specs if servable(s)],
    }


def queryables(base: str, spec: LayerSpec, sees_pii: bool) -> dict[str, Any]:
    """The queryable (and sortable) properties as a JSON Schema."""
    props: dict[str, Any] = {"id": {"type": "integer", "title": "id"}}
    for p in published(spec, sees_pii):
        props[p.column] = {**_JSON_TYPES[p.type], "title": p.label}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}{PREFIX}/collections/{spec.name}/queryables",
        "type": "object",
        "title": spec.title,
        "properties": props,
        "additionalProperties": False,
    }


def item_links(
    base: str, spec: LayerSpec, echo: list[tuple[str, str]], *, limit: int, offset: int, more: bool
) -> list[dict[str, str]]:
    """Self / next / prev / collection links of an items page (``next`` when more remain)."""
    url = f"{base}{PREFIX}/collections/{spec.name}/items"

    def at(off: int, fmt: str | None = None) -> str:
        extra = [("f", fmt)] if fmt else []
        return url + "?" + urlencode([*echo, ("limit", str(limit)), ("offset", str(off)), *extra])

    links = [
        _link(at(offset), "self", GEOJSON),
        _link(at(offset, "html"), "alternate", HTML),
        _link(f"{base}{PREFIX}/collections/{spec.name}", "collection", JSON),
    ]
    if more:
        links.append(_link(at(offset + limit), "next", GEOJSON, "next page"))
    if offset > 0:
        links.append(_link(at(max(0, offset - limit)), "prev", GEOJSON, "previous page"))
    return links


_PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>{title}</title><style>body{{font:14px sans-serif;margin:2em}}td,th{{border:1px solid #ccc;
padding:2px 6px}}table{{border-collapse:collapse}}</style></head><body><h1>{title}</h1>{body}
</body></html>"""


def page(title: str, body: str) -> str:
    """A minimal HTML page (``title`` is escaped; ``body`` is already-escaped HTML)."""
    return _PAGE.format(title=html.escape(title), body=body)


def links_html(links: list[dict[str, str]]) -> str:
    """An HTML list of links."""
    items = "".join(
        f'<li><a href="{html.escape(x["href"])}">{html.escape(x.get("title") or x["rel"])}</a>'
        f" ({html.escape(x['rel'])})</li>"
        for x in links
    )
    return f"<ul>{items}</ul>"


def collections_html(doc: dict[str, Any]) -> str:
    """``/ogc/collections`` as HTML."""
    rows = "".join(
        f'<tr><td><a href="{html.escape(c["links"][1]["href"])}">{html.escape(c["id"])}</a></td>'
        f"<td>{html.escape(c['title'])}</td><td>{html.escape(c['description'])}</td></tr>"
        for c in doc["collections"]
    )
    return page(
        "图层 Collections", f"<table><tr><th>id</th><th>名称</th><th>说明</th></tr>{rows}</table>"
    )


def collection_html(doc: dict[str, Any], spec: LayerSpec) -> str:
    """One collection as HTML: what it holds and where its items are."""
    props = "".join(
        f"<tr><td>{html.escape(p.column)}</td><td>{html.escape(p.label)}</td><td>{p.type}</td></tr>"
        for p in spec.properties
    )
    body = (
        f"<p>{html.escape(doc['description'])}</p>{links_html(doc['links'])}"
        f"<h2>属性</h2><table><tr><th>字段</th><th>名称</th><th>类型</th></tr>{props}</table>"
        f"<p>每页最多 {MAX_LIMIT} 条。</p>"
    )
    return page(f"{spec.title} ({spec.name})", body)


def items_html(spec: LayerSpec, fc: dict[str, Any]) -> str:
    """An items page as an HTML table (geometry left out)."""
    cols = [p.column for p in spec.properties]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["id", *cols])
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in [f["id"], *(f["properties"].get(c, "") for c in cols)]
        )
        + "</tr>"
        for f in fc["features"]
    )
    body = f"{links_html(fc['links'])}<table><tr>{head}</tr>{rows}</table>"
    return page(f"{spec.title}：要素", body)


def item_html(spec: LayerSpec, fid: int, props: dict[str, Any]) -> str:
    """One feature's properties as HTML."""
    labels = {p.column: p.label for p in spec.properties}
    rows = "".join(
        f"<tr><th>{html.escape(labels.get(k, k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in props.items()
    )
    return page(f"{spec.title} #{fid}", f"<table>{rows}</table>")
