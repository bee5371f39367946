"""The layer registry: every published layer file is valid, and invalid files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gis_service.cli import app
from gis_service.errors import InvalidInput, NotFound
from gis_service.registry import LayerSpec, default_layers_dir, json_schema, load_registry, scan
from gis_service.registry.loader import SCHEMA_FILE, quote_ident

EXPECTED = {
    "grids",
    "communities",
    "townships",
    "enterprises",
    "safety_hazards",
    "geohazard_points",
    "geohazard_zones",
    "shelters",
    "evacuation_routes",
    "fire_points",
    "forest_patches",
    "buildings",
    "survey_facilities",
    "grid_labels",
    "community_labels",
    "township_labels",
}


def _copy_layers(tmp_path: Path, **changes: object) -> Path:
    """The shipped enterprises layer with ``changes`` applied, alone in ``tmp_path``."""
    data = yaml.safe_load((default_layers_dir() / "enterprises.yaml").read_text("utf-8"))
    data.update(changes)
    (tmp_path / "enterprises.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return tmp_path


def test_every_published_layer_loads() -> None:
    registry = load_registry()
    assert set(registry.layers) == EXPECTED
    for spec in registry:
        assert spec.title
        assert spec.title_en
        assert spec.properties
        assert all(p.label for p in spec.properties)
    assert registry.get("enterprises").table == "enterprise"
    assert registry.get("grids").scope_column == "community_code"


def test_unknown_layer_is_not_found() -> None:
    registry = load_registry()
    for name in ("nope", "enterprise", "", "../grids", 'x";drop table grid;--'):
        with pytest.raises(NotFound):
            registry.get(name)


def test_committed_schema_is_current() -> None:
    assert (default_layers_dir() / SCHEMA_FILE).read_text("utf-8") == json_schema()


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    registry = scan(_copy_layers(tmp_path, colour="red"))
    assert not registry.layers
    assert any("colour" in p.message for p in registry.problems)
    with pytest.raises(InvalidInput):
        load_registry(tmp_path)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"table": "enterprise; drop table grid"}, "table"),
        ({"table": "no_such_table"}, "unknown table"),
        ({"geometry_type": "MultiPoint"}, "geometry_type"),
        ({"properties": [{"column": "secret", "label": "x", "type": "string"}]}, "no column"),
        ({"properties": [{"column": 'na"me', "label": "x", "type": "string"}]}, "pattern"),
        ({"minzoom": 12, "maxzoom": 10}, "minzoom"),
        ({"function": "tile_fn"}, "exactly one"),
        ({"name": "other"}, "named after"),
    ],
)
def test_bad_layer_files_are_reported(
    tmp_path: Path, change: dict[str, object], needle: str
) -> None:
    registry = scan(_copy_layers(tmp_path, **change))
    assert any(needle in p.message for p in registry.problems), registry.problems


def test_zoom_rules_pick_the_band() -> None:
    spec: LayerSpec = load_registry().get("enterprises")
    assert spec.rule_for(6).aggregate_px == 32
    assert spec.rule_for(11).aggregate_px == 8
    assert spec.rule_for(16).aggregate_px is None
    assert spec.cap_for(16) == spec.max_features


def test_quote_ident_refuses_anything_odd() -> None:
    assert quote_ident("grid_code") == '"grid_code"'
    for bad in ('a"b', "a b", "", "表"):
        with pytest.raises(ValueError, match="identifier"):
            quote_ident(bad)


def test_cli_validate(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["layers", "validate"])
    assert ok.exit_code == 0, ok.output
    assert "16 layers valid" in ok.output.replace("\n", " ")
    bad = _copy_layers(tmp_path, colour="red")
    result = runner.invoke(app, ["layers", "validate", "--dir", str(bad)])
    assert result.exit_code == 1
