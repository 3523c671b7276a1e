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
Every pod of theirs then runs a creditgate, and all of them count in one Redis:
the one this chart deploys as their dependency (redis.enabled), or theirs
(redis.url / redis.existingSecret). With neither, rendering fails.
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
    {{- include "creditgate.redisEnv" . | nindent 4 }}
    {{- include "creditgate.secretEnv" (list "CREDITGATE_ADMIN_TOKEN" .Values.adminToken .) | nindent 4 }}
    {{- include "creditgate.secretEnv" (list "CREDITGATE_WEBHOOK_SECRET" .Values.webhookSecret .) | nindent 4 }}
    {{- include "creditgate.secretEnv" (list "STRIPE_WEBHOOK_SECRET" .Values.stripeWebhookSecret .) | nindent 4 }}
    {{- include "creditgate.secretEnv" (list "STRIPE_API_KEY" .Values.stripeApiKey .) | nindent 4 }}
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

{{/* The Redis creditgate counts in: "external" (redis.url / redis.existingSecret win), "bundled" (redis.enabled), or "" (none). */}}
{{- define "creditgate.redisMode" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret -}}
external
{{- else if .Values.redis.enabled -}}
bundled
{{- end -}}
{{- end -}}

{{/*
Named after this chart, not .Chart: a chart that has creditgate as a
dependency and includes "creditgate.container" in its own pods (passing its
own .Chart) reaches the same Redis Service and password Secret.
*/}}
{{- define "creditgate.redis.fullname" -}}
{{- $base := ternary .Release.Name (printf "%s-creditgate" .Release.Name) (contains "creditgate" .Release.Name) | trunc 63 | trimSuffix "-" -}}
{{- printf "%s-redis" $base | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Redis pods carry their own app.kubernetes.io/name, so creditgate's selectors (Service, PDB, ServiceMonitor) never pick them up. */}}
{{- define "creditgate.redis.selectorLabels" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: credit-store
{{- end -}}

{{- define "creditgate.redis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "creditgate.redis.selectorLabels" . }}
app.kubernetes.io/version: {{ regexReplaceAll "@.*$" (toString .Values.redis.image.tag) "" | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "creditgate.name" . }}
{{- end -}}

{{/* Pod labels without the chart version: a chart upgrade alone does not restart Redis. */}}
{{- define "creditgate.redis.podLabels" -}}
{{ include "creditgate.redis.selectorLabels" . }}
app.kubernetes.io/version: {{ regexReplaceAll "@.*$" (toString .Values.redis.image.tag) "" | trunc 63 | quote }}
app.kubernetes.io/part-of: {{ include "creditgate.name" . }}
{{- end -}}

{{/* The Secret holding the bundled Redis' password, and its key. */}}
{{- define "creditgate.redis.passwordSecretName" -}}
{{- default (printf "%s-auth" (include "creditgate.redis.fullname" .)) .Values.redis.auth.existingSecret -}}
{{- end -}}

{{- define "creditgate.redis.passwordSecretKey" -}}
{{- if .Values.redis.auth.existingSecret -}}
{{- .Values.redis.auth.existingSecretKey -}}
{{- else -}}
redis-password
{{- end -}}
{{- end -}}

{{- define "creditgate.redis.passwordEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "creditgate.redis.passwordSecretName" (index . 1) }}
      key: {{ include "creditgate.redis.passwordSecretKey" (index . 1) }}
{{- end -}}

{{/*
REDIS_URL for creditgate. Your Redis: the URL from a Secret. The bundled one:
the password from its Secret first, then a URL that embeds it through
Kubernetes' $(VAR) expansion, which only sees variables listed before it.
*/}}
{{- define "creditgate.redisEnv" -}}
{{- $mode := include "creditgate.redisMode" . -}}
{{- if eq $mode "external" -}}
{{- include "creditgate.secretEnv" (list "REDIS_URL" .Values.redis .) }}
{{- else if and (eq $mode "bundled") (ne (toString .Values.store) "memory") }}
{{ include "creditgate.redis.passwordEnv" (list "REDIS_PASSWORD" .) }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s.%s.svc:6379" (include "creditgate.redis.fullname" .) .Release.Namespace | quote }}
{{- else if ne (toString .Values.store) "memory" -}}
{{- fail "creditgate.container: no Redis, so every pod that runs this container would count credits on its own. Set redis.url or redis.existingSecret (a Redis they all share), or redis.enabled=true for this chart's Redis." -}}
{{- end -}}
{{- end -}}

{{/*
Refuses values under which creditgate would hand out credits twice: more
than one process counting without a shared store, or no store chosen at all.
*/}}
{{- define "creditgate.validateStore" -}}
{{- $redis := include "creditgate.redisMode" . -}}
{{- $replicas := int .Values.replicaCount -}}
{{- $many := or .Values.autoscaling.enabled (gt $replicas 1) -}}
{{- $scale := ternary "autoscaling.enabled=true" (printf "replicaCount=%d" $replicas) (eq .Values.autoscaling.enabled true) -}}
{{- $useRedis := "redis.enabled=true for the bundled Redis, or redis.url / redis.existingSecret for yours" -}}
{{- if eq (toString .Values.store) "memory" -}}
{{- if eq $redis "external" -}}
{{- fail "store=memory, but redis.url / redis.existingSecret is set too: drop store=memory to count in that Redis, or clear redis.url and redis.existingSecret to count in memory." -}}
{{- else if eq $redis "bundled" -}}
{{- fail "store=memory, but redis.enabled=true would deploy a Redis that creditgate does not use: set redis.enabled=false as well, or drop store=memory to count in the bundled Redis." -}}
{{- else if $many -}}
{{- fail (printf "store=memory with %s: each pod would count credits in its own memory, so every account could spend its allowance once per pod. Drop store=memory and set %s; or run one replica (replicaCount=1, autoscaling.enabled=false)." $scale $useRedis) -}}
{{- end -}}
{{- else if not $redis -}}
{{- if $many -}}
{{- fail (printf "%s with no Redis: each pod would count credits in its own memory, so every account could spend its allowance once per pod. Set %s." $scale $useRedis) -}}
{{- else -}}
{{- fail (printf "no credit store: redis.enabled=false and neither redis.url nor redis.existingSecret is set. Set %s; or, for one replica whose counts vanish on restart, store=memory." $useRedis) -}}
{{- end -}}
{{- end -}}
{{- end -}}
