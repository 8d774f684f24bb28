"""checkov checks written for this project (see shop_knative_checks.py)."""
