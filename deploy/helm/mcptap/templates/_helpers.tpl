{{- define "mcptap.labels" -}}
app.kubernetes.io/part-of: mcptap
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mcptap.secretName" -}}
{{- default (printf "%s-clickhouse" .Release.Name) .Values.clickhouse.existingSecret -}}
{{- end -}}

{{- define "mcptap.image" -}}
{{- $i := index .root.Values.image .name -}}
{{- printf "%s:%s" $i.repository (default .root.Chart.AppVersion $i.tag) -}}
{{- end -}}

{{- define "mcptap.clickhouseEnv" -}}
- name: CLICKHOUSE_URL
  valueFrom:
    secretKeyRef: {name: {{ include "mcptap.secretName" . }}, key: url}
- name: CLICKHOUSE_USER
  valueFrom:
    secretKeyRef: {name: {{ include "mcptap.secretName" . }}, key: user, optional: true}
- name: CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "mcptap.secretName" . }}, key: password, optional: true}
- name: CLICKHOUSE_DATABASE
  value: {{ .Values.clickhouse.database | quote }}
- name: MCPTAP_CLICKHOUSE_TABLE
  value: {{ .Values.clickhouse.table | quote }}
{{- end -}}

{{/* The collector sidecar container (same shape as `mcptap-collector inject`).
     Args: dict "root" $ "ports" (list 8000) "service" "name". */}}
{{- define "mcptap.sidecar" -}}
{{- $v := .root.Values.collector -}}
{{- if not (has $v.securityMode (list "nonroot" "root")) -}}
{{- fail (printf "collector.securityMode must be nonroot or root, not %q" $v.securityMode) -}}
{{- end -}}
{{- $mesh := $v.mesh | default dict -}}
{{- $tls := $mesh.tlsPorts | default list -}}
{{- if and $tls (not $mesh.enabled) -}}
{{- fail "collector.mesh.tlsPorts needs collector.mesh.enabled" -}}
{{- end -}}
{{- $ports := list -}}
{{- range .ports }}{{ $ports = append $ports (int .) }}{{ end -}}
{{- if $ports }}{{ range $tls }}{{ if not (has (int .) $ports) }}{{ $ports = append $ports (int .) }}{{ end }}{{ end }}{{ end -}}
{{- $filter := list -}}
{{- range $ports }}{{ $filter = append $filter (printf "tcp port %v" .) }}{{ end -}}
- name: mcptap-collector
  image: {{ include "mcptap.image" (dict "root" .root "name" "collector") }}
  imagePullPolicy: {{ .root.Values.image.collector.pullPolicy }}
  env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_NAMESPACE
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: NODE_NAME
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: MCPTAP_INSTANCE_ID
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: OTEL_SERVICE_NAME
      value: {{ .service | quote }}
    - name: MCPTAP_INTERFACE
      value: {{ if $mesh.enabled }}"any"{{ else }}{{ $v.interface | quote }}{{ end }}
    - name: MCPTAP_FILTER
      value: {{ if $filter }}{{ join " or " $filter | quote }}{{ else }}"tcp"{{ end }}
    - name: MCPTAP_ADMIN_ADDR
      value: {{ printf "0.0.0.0:%v" $v.adminPort | quote }}
    - name: MCPTAP_SPOOL_DIR
      value: /var/spool/mcptap
    - name: MCPTAP_SPOOL_MAX_BYTES
      value: {{ $v.spoolMaxBytes | int64 | toString | quote }}
    - name: MCPTAP_LOG_FORMAT
      value: json
    {{- include "mcptap.clickhouseEnv" .root | nindent 4 }}
  ports:
    - name: mcptap-admin
      containerPort: {{ $v.adminPort }}
      protocol: TCP
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  readinessProbe:
    httpGet: {path: /readyz, port: mcptap-admin}
    periodSeconds: 5
    failureThreshold: 3
  livenessProbe:
    httpGet: {path: /healthz, port: mcptap-admin}
    periodSeconds: 10
    failureThreshold: 3
  securityContext:
    {{- if eq $v.securityMode "root" }}
    runAsNonRoot: false
    runAsUser: 0
    allowPrivilegeEscalation: false
    {{- else }}
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    # NET_RAW comes from the binary's file capability, which exec grants only
    # without no_new_privs (deploy/README.md, "Capture privileges")
    allowPrivilegeEscalation: true
    {{- end }}
    readOnlyRootFilesystem: true
    capabilities:
      drop: [ALL]
      add: [NET_RAW]
    seccompProfile: {type: RuntimeDefault}
  volumeMounts:
    - name: mcptap-spool
      mountPath: /var/spool/mcptap
{{- end -}}

{{- define "mcptap.sidecarVolume" -}}
- name: mcptap-spool
  emptyDir:
    sizeLimit: {{ .Values.collector.spoolSizeLimit }}
{{- end -}}
