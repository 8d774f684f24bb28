"""The container image, built and run with podman."""
