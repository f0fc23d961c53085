# shellcheck shell=bash
# Shared by hack/cluster/{up,down,run}: where the test node keeps its state,
# its addresses, and how a command enters its namespaces.
#
# The node lives in a network namespace and a mount namespace of its own,
# held open by an anchor process (a sleep started by `up`). Every component
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy, containerd) and every command of `run` enters both through
# nsenter, so the API server, the kubelet, the pods and any test server reach
# each other on the namespace's own addresses, and nothing they send can leave
# the machine: the namespace has no link to the host's network.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="${DVCR_CLUSTER_STATE:-${root}/_out/cluster}"
bin_k8s="${root}/bin/k8s"
bin_node="${root}/bin/node"
anchor_pid_file="${state}/anchor.pid"

node_name="dvcr-node"
# The node's address, on a veth of the namespace; the default route points
# at the peer, which is in the namespace too, so it leads nowhere.
node_ip="172.30.0.2"
node_gw="172.30.0.1"
pod_cidr="10.244.0.0/24"
service_cidr="10.96.0.0/24"
api_service_ip="10.96.0.1"
api_port=6443
# The cgroup parent of everything the node runs, inside the memory cgroup this
# session was given, so that pods are accounted where the session is; named
# after the state directory, so that two checkouts' nodes never share one.
cgroup_root="$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup | sed 's:/*$::')/dvcr-node-$(echo "${state}" | cksum | cut -d' ' -f1)"

export KUBECONFIG="${state}/pki/admin.kubeconfig"

anchor_pid() {
	[[ -f "${anchor_pid_file}" ]] || return 1
	local pid
	pid="$(cat "${anchor_pid_file}")"
	kill -0 "${pid}" 2>/dev/null || return 1
	echo "${pid}"
}

# ns_command sets NS_COMMAND to the prefix that runs a command inside the
# node's network and mount namespaces, in the current directory, with the
# node's binaries first on PATH.
ns_command() {
	local pid
	pid="$(anchor_pid)" || { echo "cluster: the node is not running (make cluster)" >&2; return 1; }
	NS_COMMAND=(nsenter -t "${pid}" -m -n --wd="${PWD}" --
		env PATH="${bin_node}:${bin_k8s}:${root}/bin:${PATH}" KUBECONFIG="${KUBECONFIG}")
}

# in_ns CMD... runs CMD inside the node's namespaces.
in_ns() {
	ns_command || return 1
	"${NS_COMMAND[@]}" "$@"
}

# cgroup_dirs prints the node's cgroup directory in every v1 hierarchy (and
# the v2 one where it is mounted).
cgroup_dirs() {
	local h
	for h in /sys/fs/cgroup/*/; do
		[[ -d "${h}" ]] || continue
		echo "${h%/}${cgroup_root}"
	done
}
