"""End-to-end tests against a real cluster (opt-in: SHOP_E2E_CONTEXT)."""
