{{/* Names, labels and the reusable creditgate container. */}}

{{- define "creditgate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "creditgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "creditgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "creditgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "creditgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "creditgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: credit-gate
{{- end -}}

{{- define "creditgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "creditgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "creditgate.configMapName" -}}
{{- default (printf "%s-config" (include "creditgate.fullname" .)) .Values.existingConfigMap -}}
{{- end -}}

{{- define "creditgate.secretName" -}}
{{- printf "%s-secrets" (include "creditgate.fullname" .) -}}
{{- end -}}

{{- define "creditgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* A secret-backed env var: from an existing Secret, or from the chart's own. */}}
{{- define "creditgate.secretEnv" -}}
{{- $ref := index . 1 -}}
{{- $root := index . 2 -}}
{{- if or $ref.existingSecret (or $ref.value $ref.url) }}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ default (include "creditgate.secretName" $root) $ref.existingSecret }}
      key: {{ $ref.existingSecretKey }}
{{- end }}
{{- end -}}

{{/*
The creditgate container. Other charts can run creditgate as a sidecar of
their own pods with:
  {{- include "creditgate.container" (dict "Values" .Values.creditgate "Chart" .Chart "Release" .Release) | nindent 8 }}
plus the volume from "creditgate.configVolume". Values follow this chart's values.yaml.
*/}}
{{- define "creditgate.container" -}}
- name: creditgate
  image: {{ include "creditgate.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  env:
    - name: CREDITGATE_CONFIG
      value: /etc/creditgate/{{ .Values.configKey }}
    - name: CREDITGATE_UPSTREAM
      value: {{ .Values.upstream | quote }}
    - name: PORT
      value: {{ .Values.ports.proxy | quote }}
    - name: ADMIN_PORT
      value: {{ .Values.ports.admin | quote }}
    - name: LOG_LEVEL
      value: {{ .Values.logLevel | quote }}
    - name: CREDITGATE_SHUTDOWN_GRACE_MS
      value: {{ mul .Values.shutdownGraceSeconds 1000 | quote }}
    {{- include "creditgate.secretEnv" (list "REDIS_URL" .Values.redis .) | nindent 4 }}
    {{- include "creditgate.secretEnv" (list "CREDITGATE_ADMIN_TOKEN" .Values.adminToken .) | nindent 4 }}
    {{- include "creditgate.secretEnv" (list "CREDITGATE_WEBHOOK_SECRET" .Values.webhookSecret .) | nindent 4 }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: proxy
      containerPort: {{ .Values.ports.proxy }}
      protocol: TCP
    - name: admin
      containerPort: {{ .Values.ports.admin }}
      protocol: TCP
  livenessProbe:
    httpGet: { path: /healthz, port: admin }
    {{- toYaml .Values.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet: { path: /readyz, port: admin }
    {{- toYaml .Values.probes.readiness | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  volumeMounts:
    # A directory mount, never subPath: subPath files are not updated when the ConfigMap changes.
    - name: creditgate-config
      mountPath: /etc/creditgate
      readOnly: true
{{- end -}}

{{- define "creditgate.configVolume" -}}
- name: creditgate-config
  configMap:
    name: {{ include "creditgate.configMapName" . }}
{{- end -}}
