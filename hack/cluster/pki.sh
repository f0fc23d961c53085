# shellcheck shell=bash
# The node's certificates and kubeconfigs (sourced by hack/cluster/up): one CA
# signs the API server's and the kubelet's serving certificates and a client
# certificate per component, as kubeadm lays them out.

# cert NAME CN ORG [SAN] writes pki/NAME.{key,crt} signed by the CA.
cert() {
	local name="$1" cn="$2" org="$3" san="${4:-}"
	local dir="${state}/pki"
	[[ -f "${dir}/${name}.crt" ]] && return 0
	local subj="/CN=${cn}"
	[[ -n "${org}" ]] && subj="/O=${org}${subj}"
	openssl req -new -newkey rsa:2048 -nodes -keyout "${dir}/${name}.key" \
		-subj "${subj}" -out "${dir}/${name}.csr" 2>/dev/null
	local ext="${dir}/${name}.ext"
	echo "basicConstraints=CA:FALSE" >"${ext}"
	echo "keyUsage=critical,digitalSignature,keyEncipherment" >>"${ext}"
	if [[ -n "${san}" ]]; then
		echo "extendedKeyUsage=serverAuth,clientAuth" >>"${ext}"
		echo "subjectAltName=${san}" >>"${ext}"
	else
		echo "extendedKeyUsage=clientAuth" >>"${ext}"
	fi
	openssl x509 -req -in "${dir}/${name}.csr" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" \
		-CAcreateserial -days 365 -extfile "${ext}" -out "${dir}/${name}.crt" 2>/dev/null
	rm -f "${dir}/${name}.csr" "${dir}/${name}.ext"
}

# kubeconfig NAME CERT writes pki/NAME.kubeconfig for the client certificate CERT.
kubeconfig() {
	local dir="${state}/pki"
	cat >"${dir}/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: dvcr-node
    cluster:
      certificate-authority: ${dir}/ca.crt
      server: https://${node_ip}:${api_port}
users:
  - name: $2
    user:
      client-certificate: ${dir}/$2.crt
      client-key: ${dir}/$2.key
contexts:
  - name: dvcr-node
    context: {cluster: dvcr-node, user: $2}
current-context: dvcr-node
KC
}

make_pki() {
	local dir="${state}/pki"
	mkdir -p "${dir}"
	if [[ ! -f "${dir}/ca.crt" ]]; then
		openssl req -x509 -new -newkey rsa:2048 -nodes -days 365 -subj "/CN=dvcr-node-ca" \
			-keyout "${dir}/ca.key" -out "${dir}/ca.crt" 2>/dev/null
	fi
	[[ -f "${dir}/sa.key" ]] || {
		openssl genrsa -out "${dir}/sa.key" 2048 2>/dev/null
		openssl rsa -in "${dir}/sa.key" -pubout -out "${dir}/sa.pub" 2>/dev/null
	}
	cert apiserver kube-apiserver "" \
		"DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:${api_service_ip},IP:${node_ip},IP:127.0.0.1"
	cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
	cert kubelet-serving "system:node:${node_name}" system:nodes "DNS:${node_name},IP:${node_ip}"
	cert admin kubernetes-admin system:masters
	cert kubelet "system:node:${node_name}" system:nodes
	cert controller-manager system:kube-controller-manager ""
	cert scheduler system:kube-scheduler ""
	cert kube-proxy system:kube-proxy ""
	local c
	for c in admin kubelet controller-manager scheduler kube-proxy; do
		kubeconfig "${c}" "${c}"
	done
}
