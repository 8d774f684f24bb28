"""The shop's event catalog: one JSON Schema per event type, and `load_catalog()`."""

from catalog.loader import SKU_PATTERN, Catalog, CatalogError, EventType, load_catalog

__all__ = ["SKU_PATTERN", "Catalog", "CatalogError", "EventType", "load_catalog"]
