#!/usr/bin/env bash
# The kind end-to-end suite, in one command, on a machine with Docker, kind, kubectl and helm:
#
#   e2e/run.sh                    # create a kind cluster, test, delete the cluster
#   E2E_KEEP=1 e2e/run.sh         # keep the cluster afterwards (to look around; delete it yourself)
#   e2e/run.sh -k rolling         # extra arguments go to pytest
#
# Steps: kind cluster -> build the three images and `kind load` them -> RabbitMQ, Redis and MariaDB for
# testing (e2e/manifests/backends.yaml) -> `helm install` charts/imcluster with the operator image ->
# Secrets + IMCluster -> `kubectl wait` for Ready -> `pytest e2e/` (the scenarios of
# tests/support/scenarios.py through `kubectl port-forward` and a NodePort) -> cleanup.
# See e2e/README.md. This cannot run on a machine without a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${E2E_CLUSTER:-imcluster-e2e}
export E2E_NAMESPACE=${E2E_NAMESPACE:-imcluster-e2e}
export E2E_IMCLUSTER=chat
OPERATOR_NAMESPACE=${E2E_OPERATOR_NAMESPACE:-imcluster-system}
VERSION=${E2E_IMAGE_TAG:-e2e-$(git rev-parse --short HEAD 2>/dev/null || echo local)}
KEEP=${E2E_KEEP:-0}
export KUBECONFIG=${E2E_KUBECONFIG:-$(mktemp /tmp/imcluster-e2e-kubeconfig.XXXXXX)}

for tool in docker kind kubectl helm; do
    command -v "$tool" >/dev/null || { echo "e2e/run.sh needs $tool on PATH" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "e2e/run.sh needs a running Docker engine" >&2; exit 2; }
[[ -x .venv/bin/pytest ]] || scripts/setup-venv test

step() { printf '\n== %s\n' "$*"; }

cleanup() {
    local status=$?
    if ((status != 0)); then
        step "failed: state of the cluster"
        kubectl get imc,deploy,pods,svc -n "$E2E_NAMESPACE" -o wide 2>/dev/null || true
        kubectl describe imc -n "$E2E_NAMESPACE" 2>/dev/null | tail -30 || true
        kubectl logs -n "$OPERATOR_NAMESPACE" -l app.kubernetes.io/component=operator --tail=50 2>/dev/null || true
    fi
    if [[ $KEEP == 1 ]]; then
        echo "kept kind cluster $CLUSTER (KUBECONFIG=$KUBECONFIG); remove it with: kind delete cluster --name $CLUSTER"
    else
        step "delete kind cluster $CLUSTER"
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
        [[ -n ${E2E_KUBECONFIG:-} ]] || rm -f "$KUBECONFIG"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "kind cluster $CLUSTER"
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    kind create cluster --name "$CLUSTER" --config e2e/kind-config.yaml --wait 180s
fi
kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG" >/dev/null

step "images imcluster/{gateway,logic,operator}:$VERSION"
for role in gateway logic operator; do
    docker build --quiet -f "Dockerfile.$role" -t "imcluster/$role:$VERSION" \
        --build-arg VERSION="$VERSION" --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
        --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" . >/dev/null
    kind load docker-image "imcluster/$role:$VERSION" --name "$CLUSTER" >/dev/null
    echo "   imcluster/$role:$VERSION built and loaded"
done

step "RabbitMQ, Redis and MariaDB for testing in namespace $E2E_NAMESPACE"
kubectl create namespace "$E2E_NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n "$E2E_NAMESPACE" -f e2e/manifests/backends.yaml
kubectl wait -n "$E2E_NAMESPACE" --for=condition=Available deployment/mysql deployment/redis deployment/rabbitmq \
    --timeout=300s

step "helm install the operator (chart charts/imcluster) into $OPERATOR_NAMESPACE"
helm upgrade --install imcluster charts/imcluster --namespace "$OPERATOR_NAMESPACE" --create-namespace \
    --set image.repository=imcluster/operator --set image.tag="$VERSION" --set image.pullPolicy=IfNotPresent \
    --wait --timeout 5m
kubectl wait --for=condition=Established crd/imclusters.imcluster.io --timeout=60s

step "Secrets and the IMCluster $E2E_IMCLUSTER"
kubectl apply -n "$E2E_NAMESPACE" -f e2e/manifests/secrets.yaml
sed "s/@VERSION@/$VERSION/g" e2e/manifests/imcluster.yaml | kubectl apply -n "$E2E_NAMESPACE" -f -
kubectl apply -n "$E2E_NAMESPACE" -f e2e/manifests/gateway-entry.yaml
kubectl wait -n "$E2E_NAMESPACE" "imc/$E2E_IMCLUSTER" --for=condition=Ready --timeout=600s
kubectl get imc -n "$E2E_NAMESPACE"

step "pytest e2e/"
export E2E_ENTRY_URL=${E2E_ENTRY_URL:-http://127.0.0.1:30080}
.venv/bin/pytest e2e/ -v -ra "$@"
