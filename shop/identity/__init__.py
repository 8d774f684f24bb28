"""The local OIDC issuer of `shop up`: what the cluster's API server does for Knative's senders."""
