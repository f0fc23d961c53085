{{/*
Name of every object of the release: "dvcr" unless fullnameOverride is set.
*/}}
{{- define "dvcr.fullname" -}}
{{- .Values.fullnameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dvcr.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dvcr.labels" -}}
{{ include "dvcr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: registry
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/*
Cluster-scoped objects carry the namespace in their name so that releases in
different namespaces do not collide.
*/}}
{{- define "dvcr.clusterName" -}}
{{- printf "%s:%s" .Release.Namespace (include "dvcr.fullname" .) -}}
{{- end -}}

{{- define "dvcr.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "dvcr.registryHost" -}}
{{- .Values.dvcr.registryHost | default (printf "%s.%s.svc" (include "dvcr.fullname" .) .Release.Namespace) -}}
{{- end -}}

{{- define "dvcr.scheme" -}}
{{- if .Values.dvcr.tls.enabled }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{/*
Base URLs of the upload endpoint written into the config: inside the cluster
the Service (port 80, or 443 with TLS); outside the given URL or, with the
Ingress on, its host (https when the Ingress has a TLS Secret).
*/}}
{{- define "dvcr.uploadInClusterURL" -}}
{{- $scheme := ternary "https" "http" .Values.dvcr.tls.enabled -}}
{{- .Values.dvcr.provisioning.upload.inClusterURL | default (printf "%s://%s.%s.svc/upload" $scheme (include "dvcr.fullname" .) .Release.Namespace) -}}
{{- end -}}

{{- define "dvcr.uploadExternalURL" -}}
{{- $upload := .Values.dvcr.provisioning.upload -}}
{{- if $upload.externalURL -}}
{{- $upload.externalURL -}}
{{- else if $upload.ingress.enabled -}}
{{- printf "%s://%s/upload" (ternary "https" "http" (not (empty $upload.ingress.tls.secretName))) $upload.ingress.host -}}
{{- end -}}
{{- end -}}

{{/*
Paths inside the container.
*/}}
{{- define "dvcr.configDir" -}}/etc/docker/registry{{- end -}}
{{- define "dvcr.dataDir" -}}/var/lib/registry{{- end -}}
{{- define "dvcr.runDir" -}}/var/run/dvcr{{- end -}}
{{- define "dvcr.authDir" -}}/auth{{- end -}}
{{- define "dvcr.tlsDir" -}}/etc/dvcr/tls{{- end -}}
{{- define "dvcr.s3CADir" -}}/etc/dvcr/s3-ca{{- end -}}

{{/*
"true" when the S3 endpoint's CA bundle is mounted (storage type S3 and a
Secret or ConfigMap named).
*/}}
{{- define "dvcr.s3CABundle" -}}
{{- $ca := .Values.dvcr.storage.s3.caBundle -}}
{{- if and (eq .Values.dvcr.storage.type "S3") (or $ca.secretName $ca.configMapName) }}true{{ end -}}
{{- end -}}

{{/*
Name of the Secret holding the htpasswd file, and whether the chart owns it.
*/}}
{{- define "dvcr.authSecretName" -}}
{{- .Values.dvcr.auth.existingSecret | default (printf "%s-auth" (include "dvcr.fullname" .)) -}}
{{- end -}}

{{- define "dvcr.authSecretManaged" -}}
{{- if and .Values.dvcr.auth.enabled (not .Values.dvcr.auth.existingSecret) }}true{{ end -}}
{{- end -}}

{{/*
Checks of values the schema cannot express; each message names the values.
*/}}
{{- define "dvcr.validate" -}}
{{- $auth := .Values.dvcr.auth -}}
{{- if $auth.enabled -}}
  {{- $sources := 0 -}}
  {{- if $auth.htpasswd }}{{ $sources = add1 $sources }}{{ end -}}
  {{- if or $auth.username $auth.password }}{{ $sources = add1 $sources }}{{ end -}}
  {{- if $auth.existingSecret }}{{ $sources = add1 $sources }}{{ end -}}
  {{- if ne (int $sources) 1 -}}
    {{- fail "dvcr.auth: with dvcr.auth.enabled=true give exactly one of dvcr.auth.htpasswd, dvcr.auth.username+dvcr.auth.password or dvcr.auth.existingSecret" -}}
  {{- end -}}
  {{- if and (or $auth.username $auth.password) (not (and $auth.username $auth.password)) -}}
    {{- fail "dvcr.auth: dvcr.auth.username and dvcr.auth.password must be given together" -}}
  {{- end -}}
  {{- if contains ":" $auth.username -}}
    {{- fail "dvcr.auth.username: must not contain ':'" -}}
  {{- end -}}
{{- end -}}
{{- if and .Values.dvcr.tls.enabled (not .Values.dvcr.tls.secretName) -}}
  {{- fail "dvcr.tls.secretName: required when dvcr.tls.enabled=true (a kubernetes.io/tls Secret with tls.crt and tls.key)" -}}
{{- end -}}
{{- $ingress := .Values.dvcr.provisioning.upload.ingress -}}
{{- if and $ingress.enabled (not $ingress.host) -}}
  {{- fail "dvcr.provisioning.upload.ingress.host: required when dvcr.provisioning.upload.ingress.enabled=true (the host name of the external upload URL)" -}}
{{- end -}}
{{- if and $ingress.enabled (not .Values.dvcr.provisioning.enabled) -}}
  {{- fail "dvcr.provisioning.upload.ingress.enabled: needs dvcr.provisioning.enabled=true (uploads are for the provisioning controller's images)" -}}
{{- end -}}
{{- if and .Values.monitoring.serviceMonitor.enabled (not .Values.dvcr.metrics.enabled) -}}
  {{- fail "monitoring.serviceMonitor.enabled: needs dvcr.metrics.enabled=true" -}}
{{- end -}}
{{- $ca := .Values.dvcr.storage.s3.caBundle -}}
{{- if and $ca.secretName $ca.configMapName -}}
  {{- fail "dvcr.storage.s3.caBundle: give secretName or configMapName, not both" -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (ne .Values.dvcr.storage.type "S3") -}}
  {{- fail (printf "replicas: %d replicas need dvcr.storage.type=S3 (a %s volume serves one pod); see the README on moving from a PVC to S3" (int .Values.replicas) .Values.dvcr.storage.type) -}}
{{- end -}}
{{- end -}}

{{/*
"true" when the registry runs as replicas coordinated through Leases: on S3,
whatever the number of pods, so that scaling needs no other change.
*/}}
{{- define "dvcr.replicated" -}}
{{- if eq .Values.dvcr.storage.type "S3" }}true{{ end -}}
{{- end -}}

{{/*
The Secret holding http.secret, the same on every replica (an upload whose
requests reach different replicas needs it). Generated once and kept across
upgrades.
*/}}
{{- define "dvcr.httpSecretName" -}}{{ include "dvcr.fullname" . }}-http{{- end -}}
{{- define "dvcr.httpSecret" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "dvcr.httpSecretName" .) -}}
{{- if and $existing $existing.data (index $existing.data "secret") -}}
{{- index $existing.data "secret" | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}

{{/*
The htpasswd file of a chart-owned Secret. username/password are hashed with
bcrypt, whose salt is random: to keep the Secret, and the checksum that rolls
the pod, unchanged across upgrades while the credentials stay the same, the
line of the Secret in the cluster is reused when its fingerprint (a digest of
that line and the credentials, stored next to it) still matches. The result is
computed once per render and cached so that the Secret and the pod checksum
agree.
*/}}
{{- define "dvcr.htpasswdFile" -}}
{{- $auth := .Values.dvcr.auth -}}
{{- if not (hasKey $auth "_rendered") -}}
  {{- $line := "" -}}
  {{- if $auth.htpasswd -}}
    {{- $line = $auth.htpasswd | trim -}}
  {{- else -}}
    {{- $creds := printf "%s:%s" $auth.username $auth.password -}}
    {{- $existing := lookup "v1" "Secret" .Release.Namespace (include "dvcr.authSecretName" .) -}}
    {{- if and $existing $existing.data -}}
      {{- $old := index $existing.data "htpasswd" | default "" | b64dec | trim -}}
      {{- $oldFingerprint := index $existing.data "fingerprint" | default "" | b64dec -}}
      {{- if and $old (eq $oldFingerprint (sha256sum (printf "%s\n%s" $old $creds))) -}}
        {{- $line = $old -}}
      {{- end -}}
    {{- end -}}
    {{- if not $line -}}
      {{- $line = htpasswd $auth.username $auth.password -}}
    {{- end -}}
    {{- $_ := set $auth "_fingerprint" (sha256sum (printf "%s\n%s" $line $creds)) -}}
  {{- end -}}
  {{- $_ := set $auth "_rendered" (printf "%s\n" $line) -}}
{{- end -}}
{{- $auth._rendered -}}
{{- end -}}

{{/*
"true" when the CustomResourceDefinition named by the second argument exists
in the cluster and is not managed by this release. Empty in `helm template`
and client-side dry runs, where lookup sees no cluster.
*/}}
{{- define "dvcr.crdOwnedElsewhere" -}}
{{- $root := index . 0 -}}
{{- $existing := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" (index . 1) -}}
{{- if $existing -}}
  {{- $annotations := $existing.metadata.annotations | default dict -}}
  {{- if not (and (eq (index $annotations "meta.helm.sh/release-name" | default "") $root.Release.Name) (eq (index $annotations "meta.helm.sh/release-namespace" | default "") $root.Release.Namespace)) -}}
true
  {{- end -}}
{{- end -}}
{{- end -}}
