# shellcheck shell=bash
# What a cluster administrator provides and a user installs (sourced by
# hack/cluster/up): a default StorageClass with a local PersistentVolume on
# the node, then DVCR with the commands of README.md's install section.

release_namespace="d8-virtualization"

install_storage() {
	local dir="${state}/volumes/dvcr"
	mkdir -p "${dir}"
	in_ns kubectl apply -f - >/dev/null <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: dvcr-local
spec:
  capacity: {storage: 100Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  local: {path: ${dir}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: kubernetes.io/hostname, operator: In, values: [${node_name}]}
YAML
}

# install_dvcr runs README.md's install commands, unless the release exists.
install_dvcr() {
	local t=${SECONDS}
	if in_ns helm status dvcr -n "${release_namespace}" >/dev/null 2>&1; then
		echo "cluster: release dvcr already installed"
	else
		(cd "${root}" && in_ns helm install dvcr charts/dvcr -n "${release_namespace}" --create-namespace)
	fi
	in_ns kubectl -n "${release_namespace}" rollout status deploy/dvcr --timeout=300s
	echo "cluster: DVCR Ready $((SECONDS - t))s after helm install"
}
