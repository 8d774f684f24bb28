"""Sender identity as Knative does it: OIDC tokens, who they name, how a receiver checks them."""
