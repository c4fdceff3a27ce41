{{/*
Names are fixed, as in deploy/: the webhook configuration is cluster-wide (one release per
cluster) and guardrail's certificate loop looks its Secret and configuration up by name.
*/}}
{{- define "guardrail.name" -}}guardrail{{- end }}
{{- define "guardrail.tlsSecret" -}}guardrail-tls{{- end }}
{{- define "guardrail.configMap" -}}guardrail-config{{- end }}

{{/* Every object's labels: deploy/'s two, and Helm's. */}}
{{- define "guardrail.labels" -}}
app.kubernetes.io/name: guardrail
app.kubernetes.io/part-of: guardrail
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The pods' labels and the selector of the Deployment, Service, PDB and spread. */}}
{{- define "guardrail.selectorLabels" -}}
app: guardrail
role: webhook
{{- end }}

{{- define "guardrail.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* The config file: the values of the config's own keys, in the order of its README. */}}
{{- define "guardrail.config" -}}
mode: {{ .Values.mode | toJson }}
onError: {{ .Values.onError | toJson }}
allowNamespaceModeLabel: {{ .Values.allowNamespaceModeLabel | toJson }}
exemptions:
  {{- toYaml .Values.exemptions | nindent 2 }}
policies:
  {{- toYaml .Values.policies | nindent 2 }}
audit:
  {{- toYaml .Values.audit | nindent 2 }}
{{- end }}

{{/*
The namespaces every webhook leaves out: the exempt list and the release namespace, sorted and
quoted (a name such as "yes" or "123" stays a string), as `guardrail manifests webhook` renders
them for deploy/base/webhook.yaml.
*/}}
{{- define "guardrail.exemptNamespaces" -}}
{{- $names := concat (.Values.exemptions.namespaces | default list) (list .Release.Namespace) | uniq | sortAlpha -}}
{{- range $names }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* The exempt names whose creation is judged: all but the release namespace (a webhook
configuration left behind must not block reinstalling). */}}
{{- define "guardrail.claimableNamespaces" -}}
{{- $names := without (.Values.exemptions.namespaces | default list | uniq | sortAlpha) .Release.Namespace -}}
{{- range $names }}
- {{ . | quote }}
{{- else }}
{{- /* `In` needs a value: one no namespace name can be (they have no dots). */}}
- "none.guardrail.dev"
{{- end }}
{{- end }}

{{/* The fields every webhook shares. */}}
{{- define "guardrail.webhookCommon" -}}
admissionReviewVersions: [v1]
sideEffects: None
failurePolicy: Fail
matchPolicy: Equivalent
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
clientConfig:
  service:
    name: {{ include "guardrail.name" . }}
    namespace: {{ .Release.Namespace }}
    path: /validate
    port: 443
{{- end }}
