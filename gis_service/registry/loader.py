"""Load ``layers/*.yaml`` into a :class:`Registry`, checked against the database models.

A layer file names tables and columns; they must exist in :mod:`gis_service.db.models`
with the declared geometry type, so a layer can never point SQL at something that is
not there. Parsing happens once per directory (cached); ``gis-service layers validate``
reports every problem of every file at once.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import Table

from gis_service.db.models import Base
from gis_service.errors import InvalidInput, NotFound
from gis_service.registry.model import LayerSpec

#: Environment variable naming another layers directory (benchmarks, tests).
LAYERS_DIR_ENV = "GIS_LAYERS_DIR"
SCHEMA_FILE = "layer.schema.json"


def default_layers_dir() -> Path:
    """``$GIS_LAYERS_DIR`` or the repository's ``layers/`` directory."""
    env = os.environ.get(LAYERS_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "layers"


def quote_ident(name: str) -> str:
    """Double-quote an identifier that already passed the registry's pattern check."""
    if not name or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        raise ValueError(f"not a registry identifier: {name!r}")
    return f'"{name}"'


@dataclass(frozen=True)
class LayerProblem:
    """One problem in one layer file."""

    file: str
    message: str


@dataclass(frozen=True)
class Registry:
    """The published layers, by name."""

    layers: dict[str, LayerSpec]
    directory: Path
    #: A digest of every layer file: part of tile cache keys and ETags.
    digest: str = ""
    problems: tuple[LayerProblem, ...] = field(default=())

    def get(self, name: str) -> LayerSpec:
        """The layer called ``name``; :class:`NotFound` for anything else (never echoed)."""
        spec = self.layers.get(name) if isinstance(name, str) else None
        if spec is None:
            raise NotFound(detail="no such layer", detail_zh="图层不存在")
        return spec

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(self.layers.values())


def _geometry_type(table: Table, column: str) -> str | None:
    col = table.columns.get(column)
    if col is None:
        return None
    kind = getattr(col.type, "geometry_type", None)
    return str(kind).upper() if kind else None


def check_against_models(spec: LayerSpec) -> list[str]:
    """Problems between a layer and the SQLAlchemy models (tables, columns, geometry type)."""
    problems: list[str] = []
    tables = Base.metadata.tables
    for name in spec.source_tables:
        if name not in tables:
            problems.append(f"unknown table {name!r}")
    if spec.table is None or spec.table not in tables:
        return problems
    table = tables[spec.table]
    wanted = [
        spec.id_column,
        spec.scope_column,
        *(p.column for p in spec.properties),
        *(f.column for f in spec.filters),
    ]
    if spec.time_column:
        wanted.append(spec.time_column)
    if spec.aggregate:
        wanted.extend(spec.aggregate.group_by)
    if spec.style.color_by:
        wanted.append(spec.style.color_by)
    if spec.style.label_column:
        wanted.append(spec.style.label_column)
    problems.extend(
        f"table {spec.table!r} has no column {c!r}" for c in wanted if c not in table.columns
    )
    if spec.scope_mode == "ancestors" and "ancestors" not in table.columns:
        problems.append("scope_mode `ancestors` needs an `ancestors` column")
    kind = _geometry_type(table, spec.geometry_column)
    if kind is None:
        problems.append(f"{spec.geometry_column!r} is not a geometry column of {spec.table!r}")
    elif kind != spec.geometry_type.upper():
        problems.append(f"geometry_type {spec.geometry_type} but the column holds {kind}")
    style = spec.style
    # A line style may outline polygons; fills need polygons, circles need points.
    kinds = {
        "circle": ("POINT",),
        "line": ("LINESTRING", "POLYGON"),
        "fill": ("POLYGON",),
        "symbol": ("POINT",),
    }
    if not any(k in spec.geometry_type.upper() for k in kinds[style.kind]):
        problems.append(f"style kind {style.kind!r} does not draw {spec.geometry_type}")
    return problems


def parse_layer_file(path: Path) -> tuple[LayerSpec | None, list[str]]:
    """One layer file → its spec and the problems found (spec is None when unusable)."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return None, [f"cannot read YAML: {exc}"]
    if not isinstance(data, dict):
        return None, ["the file must hold one mapping"]
    try:
        spec = LayerSpec.model_validate(data)
    except ValidationError as exc:
        return None, [
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}"
            for err in exc.errors()
        ]
    problems = check_against_models(spec)
    if spec.name != path.stem:
        problems.append(f"the file must be named after the layer: {spec.name}.yaml")
    return spec, problems


def scan(directory: Path) -> Registry:
    """Parse every ``*.yaml`` in ``directory``, keeping all problems (for ``layers validate``)."""
    import hashlib

    layers: dict[str, LayerSpec] = {}
    problems: list[LayerProblem] = []
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(directory.glob("*.yaml")):
        digest.update(path.read_bytes())
        spec, found = parse_layer_file(path)
        problems.extend(LayerProblem(path.name, m) for m in found)
        if spec is not None and not found:
            if spec.name in layers:
                problems.append(LayerProblem(path.name, f"layer {spec.name!r} defined twice"))
            layers[spec.name] = spec
    return Registry(layers, directory, digest.hexdigest(), tuple(problems))


@functools.cache
def _load(directory: Path) -> Registry:
    registry = scan(directory)
    if registry.problems:
        listed = "; ".join(f"{p.file}: {p.message}" for p in registry.problems[:10])
        raise InvalidInput(detail=f"invalid layer files: {listed}", detail_zh="图层配置无效")
    return registry


def load_registry(directory: Path | None = None) -> Registry:
    """The registry of ``directory`` (default :func:`default_layers_dir`), parsed once.

    Raises:
        InvalidInput: a layer file is invalid (run ``gis-service layers validate``).
    """
    return _load((directory or default_layers_dir()).resolve())


def json_schema() -> str:
    """The JSON Schema of a layer file, as committed in ``layers/layer.schema.json``."""
    schema = LayerSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://gis-service.local/schemas/layer.schema.json"
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
