"""Chart, manifests, skaffold and image-definition checks that need no cluster."""
