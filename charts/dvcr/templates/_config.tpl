{{/*
config.yml: the distribution registry configuration plus the dvcr: section.
The pod template carries its digest, so any change rolls the pod.
*/}}
{{- define "dvcr.configYAML" -}}
version: 0.1
log:
  level: {{ .Values.dvcr.logLevel }}
  formatter: {{ .Values.dvcr.logFormat }}
  fields:
    service: registry
storage:
{{- if eq .Values.dvcr.storage.type "S3" }}
  {{- $s3 := .Values.dvcr.storage.s3 }}
  # Credentials come from the environment (REGISTRY_STORAGE_S3_ACCESSKEY,
  # REGISTRY_STORAGE_S3_SECRETKEY), out of this ConfigMap.
  s3:
    bucket: {{ required "dvcr.storage.s3.bucket is required for storage type S3" $s3.bucket | quote }}
    region: {{ $s3.region | quote }}
    {{- with $s3.endpoint }}
    regionendpoint: {{ . | quote }}
    {{- end }}
    secure: {{ not (hasPrefix "http://" $s3.endpoint) }}
    forcepathstyle: {{ $s3.forcePathStyle }}
    v4auth: true
    skipverify: {{ $s3.skipVerify }}
    {{- with $s3.rootDirectory }}
    rootdirectory: {{ . | quote }}
    {{- end }}
  redirect:
    disable: true
{{- else }}
  filesystem:
    rootdirectory: {{ include "dvcr.dataDir" . }}
{{- end }}
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
  {{- if .Values.dvcr.tls.enabled }}
  tls:
    certificate: {{ include "dvcr.tlsDir" . }}/tls.crt
    key: {{ include "dvcr.tlsDir" . }}/tls.key
  {{- end }}
  debug:
    addr: :5001
    prometheus:
      enabled: {{ .Values.dvcr.metrics.enabled }}
      path: /metrics
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
{{- if .Values.dvcr.auth.enabled }}
auth:
  htpasswd:
    realm: {{ .Values.dvcr.auth.realm | quote }}
    path: {{ include "dvcr.authDir" . }}/htpasswd
{{- end }}
dvcr:
  registryHost: {{ include "dvcr.registryHost" . | quote }}
  adminSocket: {{ include "dvcr.runDir" . }}/admin.sock
  repositories:
    allowUnmanaged: {{ .Values.dvcr.repositories.allowUnmanaged }}
  gc:
    schedule: {{ .Values.dvcr.gc.schedule | quote }}
    timeout: {{ .Values.dvcr.gc.timeout | quote }}
    drainTimeout: {{ .Values.dvcr.gc.drainTimeout | quote }}
    gracePeriod: {{ .Values.dvcr.gc.gracePeriod | quote }}
  verify:
    schedule: {{ (.Values.dvcr.verify | default dict).schedule | default "" | quote }}
  {{- $prov := .Values.dvcr.provisioning }}
  provisioning:
    enabled: {{ $prov.enabled }}
    concurrency: {{ $prov.concurrency }}
    registryURL: {{ $prov.registryURL | quote }}
    upload:
      inClusterURL: {{ include "dvcr.uploadInClusterURL" . | quote }}
      externalURL: {{ include "dvcr.uploadExternalURL" . | quote }}
      timeout: {{ $prov.upload.timeout | quote }}
  {{- if include "dvcr.replicated" . }}
  cluster:
    enabled: true
    namespace: {{ .Release.Namespace | quote }}
    leaseDuration: {{ .Values.dvcr.cluster.leaseDuration | quote }}
    renewDeadline: {{ .Values.dvcr.cluster.renewDeadline | quote }}
  {{- end }}
{{- end -}}
