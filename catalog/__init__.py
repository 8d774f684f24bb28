"""The shop's event catalog: one JSON Schema per event type, and `load_catalog()`."""

from catalog.loader import Catalog, CatalogError, EventType, load_catalog

__all__ = ["Catalog", "CatalogError", "EventType", "load_catalog"]
