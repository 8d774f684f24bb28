#!/usr/bin/env bash
# Waits until the shop's Knative Services, Brokers and Triggers report Ready. skaffold runs it
# after every deploy (its status check understands Deployments, not Knative's kinds).
#
#   usage: hack/wait-ready.sh [NAMESPACE] [TIMEOUT]      defaults: shop 300s
#
# Uses the kube-context skaffold deploys to ($SKAFFOLD_KUBE_CONTEXT), else KUBE_CONTEXT, else
# kubectl's current one. On a timeout it prints what is not Ready and why, and exits 1.
set -euo pipefail
NAMESPACE=${1:-shop}
TIMEOUT=${2:-300s}
CONTEXT=${SKAFFOLD_KUBE_CONTEXT:-${KUBE_CONTEXT:-}}

kube() {
  if [ -n "$CONTEXT" ]; then
    kubectl --context "$CONTEXT" "$@"
  else
    kubectl "$@"
  fi
}

for kind in ksvc brokers triggers; do
  echo "wait-ready: waiting up to $TIMEOUT for every $kind in $NAMESPACE to be Ready"
  if ! kube -n "$NAMESPACE" wait --for=condition=Ready --timeout="$TIMEOUT" "$kind" --all; then
    echo "wait-ready: not Ready in time:" >&2
    kube -n "$NAMESPACE" get "$kind" \
      -o custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,REASON:.status.conditions[?(@.type=="Ready")].reason,MESSAGE:.status.conditions[?(@.type=="Ready")].message' >&2
    exit 1
  fi
done
echo "wait-ready: the shop in $NAMESPACE is Ready"
