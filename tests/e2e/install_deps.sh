#!/bin/sh
# Install what the end-to-end tier needs from the machine's package manager, only when missing:
#   etcd     Debian's etcd-server (3.4.x serves a 1.36 kube-apiserver fine)
#   kubectl  the real client the tests drive; machines of this kind already ship one
# kube-apiserver and kube-controller-manager are not packages: tests/e2e/build_cluster.py
# builds them from the Go module proxy. Idempotent; CI runs it as root on a fresh machine.
set -eu

need_apt_update=1
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "install_deps: $* missing and not running as root; install it with apt-get" >&2
        exit 1
    fi
    if [ "$need_apt_update" -eq 1 ]; then
        echo "install_deps: apt-get update" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        need_apt_update=0
    fi
    echo "install_deps: apt-get install $*" >&2
    # --no-install-recommends: etcd-server would otherwise pull in etcd-client and docs.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

etcd_bin() {
    # Debian installs the server as /usr/bin/etcd; PATH may not include it under sudo -E.
    command -v etcd 2>/dev/null || { [ -x /usr/bin/etcd ] && echo /usr/bin/etcd; } || true
}

if [ -z "$(etcd_bin)" ]; then
    apt_install etcd-server
    # The package starts a system etcd on 127.0.0.1:2379 where systemd runs; the harness
    # starts its own on free ports, so the system one is only stopped, never relied on.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
        systemctl stop etcd || true
    fi
fi

if ! command -v kubectl >/dev/null 2>&1; then
    apt_install kubernetes-client
fi

echo "install_deps: etcd $("$(etcd_bin)" --version | sed -n 's/^etcd Version: //p'), kubectl $(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p')" >&2
