"""The inventory service: stock per sku, reservations for orders, releases and sales."""
