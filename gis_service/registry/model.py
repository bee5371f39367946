"""What a published layer is: a typed record per ``layers/*.yaml`` file (STYLE lesson 7).

Every model refuses unknown keys (``extra="forbid"``), so a typo in a layer file is an
error at load time, not a silently ignored option. Identifiers (tables, columns) are
checked against a strict pattern here and against the SQLAlchemy models in
:mod:`gis_service.registry.loader`; only these names ever reach SQL, always quoted.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: A SQL identifier we are willing to quote into a statement.
Ident = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
#: A layer name: also the MVT layer name and the URL segment.
LayerName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
#: ``#rrggbb`` (lower case, like ``classification_class.color``).
HexColor = Annotated[str, StringConstraints(pattern=r"^#[0-9a-f]{6}$")]
Zoom = Annotated[int, Field(ge=0, le=24)]

PropertyType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
GeometryType = Literal[
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"
]
View = Literal["planner", "survey", "commander"]
VIEWS: tuple[View, ...] = ("planner", "survey", "commander")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PropertySpec(_Strict):
    """One published attribute: the column, its Chinese label and JSON type."""

    column: Ident
    label: str = Field(min_length=1, description="Chinese label shown in legends and popups")
    type: PropertyType
    #: Personal data (names, phones): masked or left out for roles that may not see it.
    pii: bool = False


class FilterSpec(_Strict):
    """A fixed row filter of the layer (``column = value`` or ``column IS [NOT] NULL``).

    Values are bound parameters; only the column name is quoted into SQL.
    """

    column: Ident
    equals: str | int | bool | None = None
    is_null: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Self:
        if (self.equals is None) == (self.is_null is None):
            raise ValueError("a filter needs exactly one of `equals` or `is_null`")
        return self


class ZoomRule(_Strict):
    """Generalisation from ``minzoom`` up to the next rule (rules are sorted by zoom)."""

    minzoom: Zoom
    #: Douglas-Peucker tolerance in screen pixels of a 256-px tile, applied in the source CRS
    #: before the projection (cheaper and smaller); 0 = none.
    simplify_px: float = Field(default=0.0, ge=0, le=64)
    #: Feature cap for this band (overrides the layer's ``max_features``).
    max_features: int | None = Field(default=None, ge=1, le=200_000)
    #: Aggregate points into cells of this many screen pixels (per ``aggregate.group_by``).
    aggregate_px: int | None = Field(default=None, ge=4, le=256)


class AggregateSpec(_Strict):
    """How point layers are aggregated at low zoom: one point per cell and group, with a count."""

    group_by: list[Ident] = Field(default_factory=list, max_length=4)
    #: Name of the count property in the tile.
    count_property: Ident = "count"
    count_label: str = "数量"


class StyleSpec(_Strict):
    """How the layer is drawn in the MapLibre styles (``/styles/{view}.json``)."""

    #: ``symbol``: a label-point layer; the style carries the label column, the client its font.
    kind: Literal["circle", "fill", "line", "symbol"]
    color: HexColor = "#3388ff"
    #: Colour by this column's value using the classes of ``scheme`` (a classification_scheme key).
    color_by: Ident | None = None
    scheme: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")] | None = None
    outline_color: HexColor | None = None
    opacity: float = Field(default=0.8, ge=0, le=1)
    radius: float = Field(default=4.0, ge=0.5, le=30)
    width: float = Field(default=1.5, ge=0.1, le=20)
    label_column: Ident | None = None
    views: list[View] = Field(default_factory=lambda: list(VIEWS), min_length=1)
    #: Draw order inside a style (lower first).
    order: int = Field(default=50, ge=0, le=1000)

    @model_validator(mode="after")
    def _scheme_with_column(self) -> Self:
        if (self.color_by is None) != (self.scheme is None):
            raise ValueError("`color_by` and `scheme` go together")
        return self


class LayerSpec(_Strict):
    """One published layer: source, properties, zooms, generalisation, cap and style."""

    name: LayerName
    title: str = Field(min_length=1, description="Chinese title")
    title_en: str = Field(min_length=1)
    description: str = ""
    #: Source table (from the SQLAlchemy models) …
    table: Ident | None = None
    #: … or a SQL function ``f(z int, x int, y int, scope text) RETURNS bytea`` (tiles only).
    function: Ident | None = None
    #: Tables a function layer reads: their writes invalidate its cached tiles.
    depends_on: list[Ident] = Field(default_factory=list)
    geometry_column: Ident = "geom"
    geometry_type: GeometryType
    id_column: Ident = "id"
    properties: list[PropertySpec] = Field(default_factory=list)
    time_column: Ident | None = None
    #: Column holding the admin code the area scope is checked against.
    scope_column: Ident = "admin_code"
    #: ``code``: the column is a village (or any unit) code looked up in ``admin_division``;
    #: ``ancestors``: the row is an ``admin_division`` row and its own ``ancestors`` decide.
    scope_mode: Literal["code", "ancestors"] = "code"
    filters: list[FilterSpec] = Field(default_factory=list)
    minzoom: Zoom = 0
    maxzoom: Zoom = 22
    max_features: int = Field(default=10_000, ge=1, le=200_000)
    buffer: int = Field(default=64, ge=0, le=1024)
    extent: int = Field(default=4096, ge=256, le=16384)
    zoom_rules: list[ZoomRule] = Field(default_factory=list)
    aggregate: AggregateSpec | None = None
    style: StyleSpec
    attribution: str = "应急管理局"

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if (self.table is None) == (self.function is None):
            raise ValueError("a layer needs exactly one of `table` or `function`")
        if self.function is not None and not self.depends_on:
            raise ValueError("a function layer must list the tables it reads in `depends_on`")
        if self.minzoom > self.maxzoom:
            raise ValueError("minzoom is above maxzoom")
        zooms = [r.minzoom for r in self.zoom_rules]
        if zooms != sorted(set(zooms)):
            raise ValueError("zoom_rules must be sorted by minzoom without repeats")
        columns = [p.column for p in self.properties]
        if len(columns) != len(set(columns)):
            raise ValueError("a property is listed twice")
        if any(r.aggregate_px for r in self.zoom_rules) and self.aggregate is None:
            raise ValueError("zoom rules aggregate but the layer has no `aggregate` section")
        if self.aggregate is not None and not self.geometry_type.endswith("Point"):
            raise ValueError("only point layers can be aggregated")
        return self

    @property
    def source_tables(self) -> tuple[str, ...]:
        """The tables whose writes change this layer's tiles."""
        own = (self.table,) if self.table else ()
        return (*own, *self.depends_on)

    def rule_for(self, z: int) -> ZoomRule:
        """The generalisation band that applies at zoom ``z`` (a neutral rule if none)."""
        chosen = ZoomRule(minzoom=0)
        for rule in self.zoom_rules:
            if rule.minzoom <= z:
                chosen = rule
        return chosen

    def cap_for(self, z: int) -> int:
        """Feature cap at zoom ``z``."""
        return self.rule_for(z).max_features or self.max_features
