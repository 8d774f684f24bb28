#!/usr/bin/env bash
# Builds a Debian bookworm base image with Python, for machines that cannot pull
# python:3.12-slim (no Docker Hub access) but reach Debian's package servers.
#
#   usage: hack/local-base-image.sh [IMAGE]        default IMAGE=localhost/shop-bookworm-python:1
#
# Needs root, podman and debootstrap. Idempotent: does nothing when IMAGE exists. Build a
# service image on it with
#   podman build --build-arg BASE_IMAGE=localhost/shop-bookworm-python:1 --build-arg WHEELS=local ...
# (see tests/image/test_image.py and docs/deploy.md).
set -euo pipefail
IMAGE=${1:-localhost/shop-bookworm-python:1}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# podman's defaults (crun, unlimited rlimits) fail on cgroup-v1 hosts; these work everywhere.
PODMAN=(podman --runtime runc)
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

if "${PODMAN[@]}" image exists "$IMAGE"; then
  echo "$IMAGE exists"
  exit 0
fi
WORK=$(mktemp -d /var/tmp/shop-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
MINIMAL="$IMAGE-minbase"
debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import - "$MINIMAL" >/dev/null
cat >"$WORK/Containerfile" <<CONTAINERFILE
FROM $MINIMAL
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3 python3-venv ca-certificates \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
CONTAINERFILE
"${PODMAN[@]}" build "${ULIMITS[@]}" --isolation chroot -t "$IMAGE" -f "$WORK/Containerfile" "$WORK" >"$WORK/build.log" 2>&1 \
  || { tail -20 "$WORK/build.log" >&2; exit 1; }
"${PODMAN[@]}" rmi "$MINIMAL" >/dev/null
echo "$IMAGE built"
