"""The layer registry: what is published, read from ``layers/*.yaml`` (see REGISTRY_API)."""

from gis_service.registry.loader import (
    LayerProblem,
    Registry,
    default_layers_dir,
    json_schema,
    load_registry,
    quote_ident,
    scan,
)
from gis_service.registry.model import (
    AggregateSpec,
    FilterSpec,
    LayerSpec,
    PropertySpec,
    StyleSpec,
    ZoomRule,
)

__all__ = [
    "AggregateSpec",
    "FilterSpec",
    "LayerProblem",
    "LayerSpec",
    "PropertySpec",
    "Registry",
    "StyleSpec",
    "ZoomRule",
    "default_layers_dir",
    "json_schema",
    "load_registry",
    "quote_ident",
    "scan",
]
