#!/usr/bin/env bash
# Builds one service image from a checkout and prints its size and that of its virtual env.
#
#   usage: hack/image-size.sh [CHECKOUT] [TAG] [SERVICE]    defaults: . current order
#
# Needs root, podman and the local base image (hack/local-base-image.sh); the dependencies
# come as wheels built on the host (WHEELS=local), as tests/image does it.
set -euo pipefail
SRC=$(cd "${1:-.}" && pwd); TAG=${2:-current}; SERVICE=${3:-order}
PODMAN=(podman --runtime runc)
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
BASE=localhost/shop-bookworm-python:1
IMAGE="localhost/shop-$SERVICE:$TAG"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$SRC"
python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > "$WORK/requirements.txt"
rm -rf build/wheels && mkdir -p build/wheels
python3 -m pip wheel --quiet --wheel-dir build/wheels -r "$WORK/requirements.txt" 2>/dev/null
"${PODMAN[@]}" build "${ULIMITS[@]}" --isolation chroot --build-arg BASE_IMAGE=$BASE \
  --build-arg WHEELS=local --target "$SERVICE" --tag "$IMAGE" --file Dockerfile . > "$WORK/build.log" 2>&1 \
  || { tail -20 "$WORK/build.log"; exit 1; }
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
base=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE")
venv=$("${PODMAN[@]}" run --rm "${ULIMITS[@]}" --entrypoint du "$IMAGE" -sb /opt/venv | cut -f1)
dists=$("${PODMAN[@]}" run --rm "${ULIMITS[@]}" --entrypoint /opt/venv/bin/python "$IMAGE" \
  -c 'import importlib.metadata as m; print(len(list(m.distributions())))')
echo "$IMAGE: image $((size / 1000000)) MB (base $((base / 1000000)) MB), /opt/venv $((venv / 1000000)) MB, $dists distributions"
