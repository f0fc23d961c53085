# shellcheck shell=bash
# The configuration files of the node's components (sourced by
# hack/cluster/up). Everything points into ${state}; nothing is written to the
# host's /etc, /var/lib or /run.

write_containerd_config() {
	mkdir -p "${state}/containerd" "${state}/cni/net.d"
	cat >"${state}/containerd/config.toml" <<TOML
version = 3
root = "${state}/containerd/root"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "${pause_image}"
[plugins.'io.containerd.cri.v1.runtime']
  # The session has no CAP_SYS_RESOURCE: an OOM score below its own (the
  # sandbox's -998) is refused, "failed to update /proc/self/oom_score_adj:
  # Permission denied". Clamp to ours instead.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "${bin_node}/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["${bin_node}/cni"]
    conf_dir = "${state}/cni/net.d"
TOML
	# One bridge for the pods; its address is their gateway, and through it
	# they reach the node's address (the API server, test servers).
	cat >"${state}/cni/net.d/10-dvcr.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "dvcr-node",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "${pod_cidr}"}]], "routes": [{"dst": "0.0.0.0/0"}],
               "dataDir": "${state}/cni/ipam"}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

write_kubelet_config() {
	mkdir -p "${state}/kubelet"
	cat >"${state}/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machine has cgroup v1 and no systemd (see docs/cluster.md).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: ${cgroup_root}
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
address: ${node_ip}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: ${state}/pki/kubelet-serving.crt
tlsPrivateKeyFile: ${state}/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${state}/pki/ca.crt}
authorization: {mode: Webhook}
podCIDR: ${pod_cidr}
clusterDomain: cluster.local
# No DNS for pods: nothing in the namespace could answer it.
resolvConf: ""
failSwapOn: false
# The images were imported, not pulled: they must never be collected, and a
# busy disk must not evict the registry.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
serializeImagePulls: false
maxPods: 50
YAML
}

write_kube_proxy_config() {
	mkdir -p "${state}/kube-proxy"
	cat >"${state}/kube-proxy/config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${state}/pki/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: ${pod_cidr}
hostnameOverride: ${node_name}
bindAddress: ${node_ip}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# conntrack limits are global to the machine: leave them as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
}
