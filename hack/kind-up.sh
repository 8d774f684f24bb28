#!/usr/bin/env bash
# Creates a kind cluster for the shop with Knative Serving (Kourier ingress) and Eventing (the
# MT channel-based broker on the in-memory channel), pinned, non-interactive and re-runnable.
#
#   usage: hack/kind-up.sh            (make kind-up)
#
# Needs kubectl, kind (unless KUBE_CONTEXT is set) and network access to GitHub's release
# downloads. Environment:
#   KIND_CLUSTER      cluster name (default shop; the kube-context is kind-$KIND_CLUSTER)
#   KIND_NODE_IMAGE   node image (default kindest/node:v1.33.1)
#   KUBE_CONTEXT      install Knative into this existing cluster instead (e.g. minikube);
#                     no kind cluster is created
# Afterwards: skaffold dev (docs/deploy.md).
set -euo pipefail

KIND_CLUSTER=${KIND_CLUSTER:-shop}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.33.1}
SERVING_VERSION=knative-v1.23.0
KOURIER_VERSION=knative-v1.23.0
EVENTING_VERSION=knative-v1.22.0
SERVING=https://github.com/knative/serving/releases/download/$SERVING_VERSION
KOURIER=https://github.com/knative-extensions/net-kourier/releases/download/$KOURIER_VERSION
EVENTING=https://github.com/knative/eventing/releases/download/$EVENTING_VERSION
CONTEXT=${KUBE_CONTEXT:-kind-$KIND_CLUSTER}
# Images with these registry names exist only on the nodes (kind load, minikube's daemon):
# Knative must not try to resolve their tags to digests.
SKIP_TAG_RESOLVING=kind.local,ko.local,dev.local

TOOLS=(kubectl)
[ -n "${KUBE_CONTEXT:-}" ] || TOOLS+=(kind)
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is not installed" >&2; exit 1; }
done

kube() { kubectl --context "$CONTEXT" "$@"; }
step() { echo; echo "kind-up: $*"; }

apply_crds() {  # apply a CRD bundle and wait until the API server serves the new kinds
  kube apply -f "$1"
  kube wait --for=condition=Established --timeout=120s crd -l "$2"
}

wait_available() {
  kube -n "$1" wait --for=condition=Available --timeout=300s deployment --all
}

if [ -n "${KUBE_CONTEXT:-}" ]; then
  step "installing Knative into the existing context $CONTEXT"
elif kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  step "cluster $KIND_CLUSTER exists; (re)installing Knative into it"
else
  step "creating cluster $KIND_CLUSTER ($KIND_NODE_IMAGE)"
  kind create cluster --name "$KIND_CLUSTER" --image "$KIND_NODE_IMAGE" --wait 120s
fi

step "Knative Serving $SERVING_VERSION"
apply_crds "$SERVING/serving-crds.yaml" knative.dev/crd-install=true
kube apply -f "$SERVING/serving-core.yaml"
wait_available knative-serving

step "Kourier $KOURIER_VERSION as Serving's ingress"
kube apply -f "$KOURIER/kourier.yaml"
kube -n knative-serving patch configmap/config-network --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
kube -n knative-serving patch configmap/config-deployment --type merge \
  -p "{\"data\":{\"registries-skipping-tag-resolving\":\"$SKIP_TAG_RESOLVING\"}}"
wait_available kourier-system

step "Knative Eventing $EVENTING_VERSION with the in-memory channel and the MT broker"
apply_crds "$EVENTING/eventing-crds.yaml" knative.dev/crd-install=true
kube apply -f "$EVENTING/eventing-core.yaml"
kube apply -f "$EVENTING/in-memory-channel.yaml"
kube apply -f "$EVENTING/mt-channel-broker.yaml"
wait_available knative-eventing

# The registry name of images that exist only in the cluster: kind.local for kind, dev.local for
# minikube (both on the skip list above).
case "$CONTEXT" in
  kind-*) DEFAULT_REPO=kind.local ;;
  *) DEFAULT_REPO=dev.local ;;
esac
if command -v skaffold >/dev/null; then
  step "skaffold: default-repo $DEFAULT_REPO for $CONTEXT"
  skaffold config set --kube-context "$CONTEXT" default-repo "$DEFAULT_REPO"
fi

cat <<DONE

kind-up: Knative is ready in kube-context $CONTEXT.
  skaffold config set --kube-context $CONTEXT default-repo $DEFAULT_REPO   # once, if not done above
  skaffold dev                                         # build, deploy, wait, port-forward
DONE
