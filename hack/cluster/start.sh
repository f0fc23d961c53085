# shellcheck shell=bash
# Starting the node's pieces (sourced by hack/cluster/up). Each step keeps
# what already runs, so `make cluster` can be repeated.

# wait_until SECONDS WHAT CMD... retries CMD until it succeeds, or fails naming WHAT.
wait_until() {
	local limit="$1" what="$2"
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			echo "cluster: ${what} not ready after ${limit}s; logs in ${state}/logs" >&2
			return 1
		fi
		sleep 1
	done
}

# daemon NAME CMD... starts CMD in the namespaces, detached, logging to
# logs/NAME.log, unless the process of pids/NAME is alive.
daemon() {
	local name="$1"
	shift
	mkdir -p "${state}/pids"
	local pidfile="${state}/pids/${name}"
	if [[ -f "${pidfile}" ]] && kill -0 "$(cat "${pidfile}")" 2>/dev/null; then
		return 0
	fi
	local pid
	pid="$(anchor_pid)"
	setsid nsenter -t "${pid}" -m -n --wd="${state}" -- \
		env PATH="${bin_node}:${bin_k8s}:/usr/sbin:/usr/bin:/sbin:/bin" "$@" \
		</dev/null >>"${state}/logs/${name}.log" 2>&1 &
	echo $! >"${pidfile}"
	echo "cluster: started ${name} (pid $!)"
}

start_namespace() {
	anchor_pid >/dev/null && return 0
	rm -f "${anchor_pid_file}"
	setsid unshare --mount --net --propagation private -- \
		sh -c "echo \$\$ >'${anchor_pid_file}'; exec sleep infinity" </dev/null >/dev/null 2>&1 &
	wait_until 10 "the namespace anchor" anchor_pid
	# A private /run: containerd's socket where cAdvisor looks for it, and
	# nothing of the host's /run touched. The host's resolver is hidden: a
	# name looked up in the namespace goes to its own loopback, never to a
	# nameserver of the host's network; the node's name is in its hosts file.
	mkdir -p "${state}/etc"
	echo "# the test node has no DNS (docs/cluster.md)" >"${state}/etc/resolv.conf"
	printf '127.0.0.1 localhost\n%s %s\n' "${node_ip}" "${node_name}" >"${state}/etc/hosts"
	in_ns sh -euc "
		mount --bind '${state}/etc/resolv.conf' /etc/resolv.conf
		mount --bind '${state}/etc/hosts' /etc/hosts
		mount -t tmpfs -o mode=0755 tmpfs /run
		ip link set lo up
		ip link add node0 type veth peer name node0-peer
		ip addr add ${node_ip}/24 dev node0
		ip link set node0 up
		ip link set node0-peer up
		ip route add default via ${node_gw} dev node0
		sysctl -qw net.ipv4.ip_forward=1"
	echo "cluster: namespace ready (anchor pid $(anchor_pid), node address ${node_ip})"
}

start_control_plane() {
	local pki="${state}/pki"
	daemon etcd etcd --name node --data-dir "${state}/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster node=http://127.0.0.1:2380
	wait_until 60 etcd in_ns curl -sf http://127.0.0.1:2379/health
	daemon kube-apiserver kube-apiserver --etcd-servers=http://127.0.0.1:2379 \
		--advertise-address="${node_ip}" --secure-port="${api_port}" \
		--tls-cert-file="${pki}/apiserver.crt" --tls-private-key-file="${pki}/apiserver.key" \
		--client-ca-file="${pki}/ca.crt" --authorization-mode=Node,RBAC \
		--enable-admission-plugins=NodeRestriction \
		--service-account-key-file="${pki}/sa.pub" --service-account-signing-key-file="${pki}/sa.key" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-cluster-ip-range="${service_cidr}" --allow-privileged=true \
		--kubelet-client-certificate="${pki}/apiserver-kubelet-client.crt" \
		--kubelet-client-key="${pki}/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority="${pki}/ca.crt" \
		--kubelet-preferred-address-types=InternalIP
	wait_until 120 kube-apiserver in_ns kubectl get --raw /readyz
	daemon kube-controller-manager kube-controller-manager \
		--kubeconfig="${pki}/controller-manager.kubeconfig" \
		--authentication-kubeconfig="${pki}/controller-manager.kubeconfig" \
		--authorization-kubeconfig="${pki}/controller-manager.kubeconfig" \
		--service-account-private-key-file="${pki}/sa.key" --root-ca-file="${pki}/ca.crt" \
		--cluster-signing-cert-file="${pki}/ca.crt" --cluster-signing-key-file="${pki}/ca.key" \
		--use-service-account-credentials=true --bind-address=127.0.0.1 --leader-elect=false
	daemon kube-scheduler kube-scheduler --kubeconfig="${pki}/scheduler.kubeconfig" \
		--authentication-kubeconfig="${pki}/scheduler.kubeconfig" \
		--authorization-kubeconfig="${pki}/scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --leader-elect=false
}

# make_cgroups creates the node's cgroup parent in every hierarchy; cpuset
# directories need their parent's CPUs and memory nodes before they take a task.
make_cgroups() {
	local d
	for d in $(cgroup_dirs); do
		mkdir -p "${d}"
		if [[ -f "${d}/cpuset.cpus" && -z "$(cat "${d}/cpuset.cpus")" ]]; then
			local p="${d}" chain=()
			while [[ -z "$(cat "${p}/cpuset.cpus")" ]]; do chain=("${p}" "${chain[@]}"); p="$(dirname "${p}")"; done
			for p in "${chain[@]}"; do
				cat "$(dirname "${p}")/cpuset.cpus" >"${p}/cpuset.cpus"
				cat "$(dirname "${p}")/cpuset.mems" >"${p}/cpuset.mems"
			done
		fi
	done
}

start_node() {
	make_cgroups
	daemon containerd containerd --config "${state}/containerd/config.toml"
	wait_until 60 containerd in_ns ctr version
	daemon kubelet kubelet --config="${state}/kubelet/config.yaml" \
		--kubeconfig="${state}/pki/kubelet.kubeconfig" --root-dir="${state}/kubelet/root" \
		--hostname-override="${node_name}" --node-ip="${node_ip}" --v=2
	daemon kube-proxy kube-proxy --config="${state}/kube-proxy/config.yaml"
}

# import_images puts the pause image and DVCR's image into containerd's
# k8s.io namespace: nothing can be pulled here.
import_images() {
	local pause_tar="${state}/pause.tar"
	[[ -f "${pause_tar}" ]] || (cd "${root}" && go run ./hack/cluster/pause "${pause_image}" "${pause_tar}")
	in_ns ctr -n k8s.io images import "${pause_tar}" >/dev/null
	in_ns ctr -n k8s.io images import "${dvcr_image_tar}" >/dev/null
	echo "cluster: images imported: $(in_ns ctr -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"
}

wait_node_ready() {
	wait_until 120 "node ${node_name}" in_ns kubectl get node "${node_name}"
	in_ns kubectl wait --for=condition=Ready "node/${node_name}" --timeout=120s
}
