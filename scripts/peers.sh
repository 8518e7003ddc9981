#!/usr/bin/env bash
# The real Kubernetes and Flux programs the tests run beside ferroflux, built from their Go
# modules. Each peer has a Go module under scripts/peers/<module>/ whose go.mod and go.sum pin
# the upstream release; binaries land in ${FERROFLUX_PEERS_DIR:-~/.cache/ferroflux/peers}/
# <peer>/<version>/ and are rebuilt only when the pinned module changes.
#
#   scripts/peers.sh build [PEER...]        build the named peers (default: all)
#   scripts/peers.sh path PEER              print a built peer's binary (exit 1 if not built)
#   scripts/peers.sh start kube-apiserver DIR [--no-workload-controllers]
#                                           etcd + kube-apiserver + kube-controller-manager on free
#                                           loopback ports, admin kubeconfig in DIR/kubeconfig;
#                                           the flag leaves workload statuses to ferroflux's
#                                           simulator (no Deployment/ReplicaSet/StatefulSet/
#                                           DaemonSet/Job controllers)
#   scripts/peers.sh stop DIR               end what `start` started in DIR
#   scripts/peers.sh source PEER            print the directory of the peer's upstream module
#                                           source (e.g. its config/crd/bases)
#   scripts/peers.sh conformance KUBECONFIG [FOCUS]
#                                           Kubernetes' own e2e.test, [sig-api-machinery]
#                                           [Conformance] by default, less what needs nodes
#   scripts/peers.sh list                   the peers, their modules and versions
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
modules="$here/peers"
peers_dir="${FERROFLUX_PEERS_DIR:-$HOME/.cache/ferroflux/peers}"
# Builds must not rewrite the pinned go.mod/go.sum, and must not pick a newer toolchain.
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# peer | Go module dir | upstream module (gives the version) | package to build
table() {
    cat <<'EOF'
kube-apiserver kube k8s.io/kubernetes k8s.io/kubernetes/cmd/kube-apiserver
kube-controller-manager kube k8s.io/kubernetes k8s.io/kubernetes/cmd/kube-controller-manager
kubectl kube k8s.io/kubernetes k8s.io/kubernetes/cmd/kubectl
e2e.test kube k8s.io/kubernetes k8s.io/kubernetes/test/e2e
etcd etcd go.etcd.io/etcd/server/v3 ferroflux.dev/peers/etcd
flux flux github.com/fluxcd/flux2/v2 github.com/fluxcd/flux2/v2/cmd/flux
source-controller source-controller github.com/fluxcd/source-controller github.com/fluxcd/source-controller
kustomize-controller kustomize-controller github.com/fluxcd/kustomize-controller github.com/fluxcd/kustomize-controller
helm helm helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm
kustomize kustomize sigs.k8s.io/kustomize/kustomize/v5 sigs.k8s.io/kustomize/kustomize/v5
cosign cosign github.com/sigstore/cosign/v2 github.com/sigstore/cosign/v2/cmd/cosign
oci-conformance distribution-spec github.com/opencontainers/distribution-spec/conformance github.com/opencontainers/distribution-spec/conformance
nats-server nats-server github.com/nats-io/nats-server/v2 github.com/nats-io/nats-server/v2
EOF
}

die() {
    echo "peers.sh: $*" >&2
    exit 1
}

row() {
    local found
    found="$(table | awk -v p="$1" '$1 == p')"
    [ -n "$found" ] || die "unknown peer '$1' (peers: $(table | awk '{print $1}' | tr '\n' ' '))"
    echo "$found"
}

# The pinned version of a module, read from the peer module's go.mod (no network).
version_of() {
    local dir="$1" module="$2"
    if [ "$module" = "ferroflux.dev/peers/etcd" ]; then module=go.etcd.io/etcd/server/v3; fi
    awk -v m="$module" '($1 == m || ($1 == "require" && $2 == m)) { print ($1 == "require" ? $3 : $2); exit }' \
        "$modules/$dir/go.mod"
}

binary_path() {
    local peer dir module version
    read -r peer dir module _ <<<"$(row "$1")"
    version="$(version_of "$dir" "$module")"
    echo "$peers_dir/$peer/$version/$peer"
}

# A hash of what the build depends on: this script's build commands (not the rest of it, so
# a change to how peers are started rebuilds nothing), the pinned module files and the Go
# version.
stamp() {
    local dir="$1"
    { declare -f build_one kube_version_ldflags; cat "$modules/$dir/go.mod" "$modules/$dir/go.sum" "$modules/$dir"/*.go 2>/dev/null; go version; } |
        sha256sum | cut -d' ' -f1
}

# What kube's release build stamps into its binaries; without it they report
# v0.0.0-master, which kubectl and the flux CLI refuse to parse.
kube_version_ldflags() {
    local version="$1" minor
    minor="$(echo "$version" | cut -d. -f2)"
    local pkg=k8s.io/component-base/version
    echo "-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor" \
        "-X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
}

build_one() {
    local peer dir module package version out stamp_file want
    read -r peer dir module package <<<"$(row "$1")"
    version="$(version_of "$dir" "$module")"
    out="$peers_dir/$peer/$version"
    stamp_file="$out/.stamp"
    want="$(stamp "$dir")"
    if [ -x "$out/$peer" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    mkdir -p "$out"
    echo "peers.sh: building $peer $version" >&2
    local start=$SECONDS
    (
        cd "$modules/$dir"
        case "$peer" in
        e2e.test)
            go test -c -trimpath -ldflags "$(kube_version_ldflags "$version")" \
                -o "$out/$peer.tmp" "$package"
            ;;
        flux)
            # cmd/flux embeds manifests/*.yaml, which upstream generates before a release build
            # and the module zip lacks. Build a copy of the verified module source with an empty
            # manifest there: `flux install` of this build has no manifests to install, every
            # other command (get, reconcile, events, tree, suspend, resume) is upstream's. The
            # copy builds with upstream's own go.mod and go.sum.
            go mod download "$module"
            local src
            src="$(go list -m -f '{{.Dir}}' "$module")"
            rm -rf "$out/src"
            cp -r "$src" "$out/src"
            chmod -R u+w "$out/src"
            mkdir -p "$out/src/cmd/flux/manifests"
            echo "# not bundled in this build" >"$out/src/cmd/flux/manifests/none.yaml"
            (cd "$out/src" && go build -trimpath -ldflags "-X main.VERSION=${version#v}" \
                -o "$out/$peer.tmp" ./cmd/flux)
            rm -rf "$out/src"
            ;;
        kube-apiserver | kube-controller-manager | kubectl)
            go build -trimpath -ldflags "$(kube_version_ldflags "$version")" \
                -o "$out/$peer.tmp" "$package"
            ;;
        *)
            go build -trimpath -o "$out/$peer.tmp" "$package"
            ;;
        esac
    )
    mv "$out/$peer.tmp" "$out/$peer"
    echo "$want" >"$stamp_file"
    echo "peers.sh: built $peer $version in $((SECONDS - start)) s" >&2
}

cmd_build() {
    local peers=("$@")
    [ ${#peers[@]} -gt 0 ] || mapfile -t peers < <(table | awk '{print $1}')
    command -v go >/dev/null || die "go is not installed"
    for peer in "${peers[@]}"; do build_one "$peer"; done
}

cmd_path() {
    [ $# -eq 1 ] || die "usage: peers.sh path PEER"
    local bin
    bin="$(binary_path "$1")"
    [ -x "$bin" ] || die "$1 is not built: run scripts/peers.sh build $1"
    echo "$bin"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CA, serving certificate, admin client certificate and the service-account key pair. P-256
# keys: every peer and client takes them, and RSA key generation costs seconds per start.
make_pki() {
    local pki="$1"
    mkdir -p "$pki"
    (
        cd "$pki"
        local key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
        openssl req -x509 "${key[@]}" -nodes -days 2 -subj "/CN=ferroflux-peer-ca" \
            -keyout ca.key -out ca.crt 2>/dev/null
        openssl req "${key[@]}" -nodes -subj "/CN=kube-apiserver" \
            -keyout apiserver.key -out apiserver.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' >apiserver.ext
        openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile apiserver.ext -out apiserver.crt 2>/dev/null
        for client in admin:system:masters kube-controller-manager:; do
            local name="${client%%:*}" org="${client#*:}"
            local subject="/CN=$name"
            [ "$name" = kube-controller-manager ] && subject="/CN=system:kube-controller-manager"
            [ -n "$org" ] && subject="/O=$org$subject"
            openssl req "${key[@]}" -nodes -subj "$subject" -keyout "$name.key" \
                -out "$name.csr" 2>/dev/null
            printf 'extendedKeyUsage=clientAuth\n' >client.ext
            openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                -extfile client.ext -out "$name.crt" 2>/dev/null
        done
        openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out sa.key 2>/dev/null
        openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    )
}

kubeconfig() {
    local file="$1" server="$2" pki="$3" user="$4"
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: peer
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$pki/$user.crt")
    client-key-data: $(base64 -w0 "$pki/$user.key")
contexts:
- name: peer
  context:
    cluster: peer
    user: $user
current-context: peer
EOF
}

cmd_start() {
    local usage="usage: peers.sh start kube-apiserver DIR [--no-workload-controllers]"
    [ $# -ge 2 ] && [ $# -le 3 ] && [ "$1" = kube-apiserver ] || die "$usage"
    # Without a kubelet no pod ever runs, so the real workload controllers would keep every
    # Deployment unavailable and overwrite any status the workload simulator writes.
    local controllers='*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service,-route'
    if [ $# -eq 3 ]; then
        [ "$3" = --no-workload-controllers ] || die "$usage"
        controllers="$controllers,-deployment,-replicaset,-statefulset,-daemonset,-job"
    fi
    local dir
    mkdir -p "$2"
    dir="$(cd "$2" && pwd)"
    [ ! -s "$dir/pids" ] || die "$dir already runs a peer: peers.sh stop $dir"
    local etcd apiserver kcm
    etcd="$(cmd_path etcd)"
    apiserver="$(cmd_path kube-apiserver)"
    kcm="$(cmd_path kube-controller-manager)"
    local etcd_port etcd_peer_port port
    etcd_port="$(free_port)"
    etcd_peer_port="$(free_port)"
    port="$(free_port)"
    make_pki "$dir/pki"
    local pki="$dir/pki" server="https://127.0.0.1:$port"
    : >"$dir/pids"

    setsid "$etcd" --name peer --data-dir "$dir/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" \
        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
        --initial-cluster "peer=http://127.0.0.1:$etcd_peer_port" \
        --unsafe-no-fsync --log-level warn >"$dir/etcd.log" 2>&1 &
    echo $! >>"$dir/pids"

    # The flags a kubeadm control plane passes, less what needs nodes; every admission plugin
    # kube enables by default stays on.
    setsid "$apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
        --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
        --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$pki/sa.pub" \
        --service-account-signing-key-file "$pki/sa.key" \
        --service-cluster-ip-range 10.0.0.0/16 --allow-privileged=true \
        --cert-dir "$dir/certs" >"$dir/kube-apiserver.log" 2>&1 &
    echo $! >>"$dir/pids"

    kubeconfig "$dir/kubeconfig" "$server" "$pki" admin
    kubeconfig "$dir/controller-manager.kubeconfig" "$server" "$pki" kube-controller-manager

    local ready=""
    for _ in $(seq 1 240); do
        if curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
            "$server/readyz" >/dev/null 2>&1; then
            ready=1
            break
        fi
        sleep 0.25
    done
    if [ -z "$ready" ]; then
        tail -20 "$dir/kube-apiserver.log" >&2
        cmd_stop "$dir"
        die "kube-apiserver did not become ready in 60 s (log: $dir/kube-apiserver.log)"
    fi

    # Garbage collection, namespace deletion, service accounts and the workload controllers: what
    # a cluster without nodes still runs.
    setsid "$kcm" --kubeconfig "$dir/controller-manager.kubeconfig" \
        --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
        --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
        --use-service-account-credentials=true \
        --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
        --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
        --controllers "$controllers" \
        >"$dir/kube-controller-manager.log" 2>&1 &
    echo $! >>"$dir/pids"
    echo "$dir/kubeconfig"
}

cmd_stop() {
    [ $# -eq 1 ] || die "usage: peers.sh stop DIR"
    local dir="$1" pid
    [ -f "$dir/pids" ] || return 0
    # The peer's data is thrown away with DIR, so nothing needs a graceful shutdown, which takes
    # kube-apiserver seconds (and up to the wait's end once etcd is gone): kill at once,
    # controllers first, storage last, then wait until each is gone.
    for pid in $(tac "$dir/pids"); do
        kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
    for pid in $(cat "$dir/pids"); do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    done
    : >"$dir/pids"
}

cmd_source() {
    [ $# -eq 1 ] || die "usage: peers.sh source PEER"
    local dir module
    read -r _ dir module _ <<<"$(row "$1")"
    (cd "$modules/$dir" && go mod download "$module" && go list -m -f '{{.Dir}}' "$module")
}

cmd_conformance() {
    [ $# -ge 1 ] && [ $# -le 2 ] || die "usage: peers.sh conformance KUBECONFIG [FOCUS]"
    local kubeconfig e2e focus
    kubeconfig="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
    focus="${2:-\[sig-api-machinery\].*\[Conformance\]}"
    cmd_build e2e.test kubectl
    e2e="$(cmd_path e2e.test)"
    # e2e.test refuses to start without a ready, schedulable node: register one that no kubelet
    # backs (the specs that would run pods on it are skipped below).
    local kubectl now
    kubectl="$(cmd_path kubectl)"
    now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    "$kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: conformance-node
  labels: {kubernetes.io/hostname: conformance-node, kubernetes.io/os: linux}
EOF
    "$kubectl" --kubeconfig "$kubeconfig" patch node conformance-node --subresource=status \
        --type=merge -p "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"no kubelet: registered by peers.sh\",\"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}],\"allocatable\":{\"cpu\":\"2\",\"memory\":\"4Gi\",\"pods\":\"110\"},\"capacity\":{\"cpu\":\"2\",\"memory\":\"4Gi\",\"pods\":\"110\"}}}" >/dev/null
    # Admission taints a new node not-ready until its kubelet reports; none will.
    "$kubectl" --kubeconfig "$kubeconfig" taint node conformance-node \
        node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
    # No kubelet runs beside ferroflux's server (nor beside the kube-apiserver peer): skip what
    # needs nodes, pods that run, or disrupts the cluster.
    local skip='\[Serial\]|\[Slow\]|\[Disruptive\]|\[Flaky\]|\[Feature:|[Pp]od|[Kk]ubelet|[Nn]ode|[Ee]xec|[Pp]roxy|Service[^A]|[Ww]ebhook|Aggregator|[Ll]ogs|CustomResourceFieldSelectors|CustomResourceConversionWebhook'
    "$e2e" --kubeconfig "$kubeconfig" --provider skeleton \
        --ginkgo.focus "$focus" --ginkgo.skip "$skip" --ginkgo.no-color --ginkgo.v \
        --ginkgo.timeout 2h --allowed-not-ready-nodes -1 --minStartupPods 0 \
        --e2e-verify-service-account=false 2>&1 |
        tee "$(dirname "$kubeconfig")/conformance.log" |
        grep -E '^(Ran |PASS|FAIL|  \[FAIL\]|SUCCESS|.*Passed \|)' || true
}

cmd_list() {
    local peer dir module
    table | while read -r peer dir module _; do
        printf '%-24s %-40s %s\n' "$peer" "$module" "$(version_of "$dir" "$module")"
    done
}

case "${1:-}" in
build) shift && cmd_build "$@" ;;
path) shift && cmd_path "$@" ;;
start) shift && cmd_start "$@" ;;
stop) shift && cmd_stop "$@" ;;
source) shift && cmd_source "$@" ;;
conformance) shift && cmd_conformance "$@" ;;
list) cmd_list ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    [ "${1:-}" = help ] || [ "${1:-}" = -h ] || exit 2
    ;;
esac
