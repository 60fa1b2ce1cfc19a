{{/*
Names. Everything namespaced the release creates is named after the release; so are its
cluster-scoped objects (ClusterRole, ClusterRoleBinding), so two releases never collide on
them. The CRDs and the vibeplane-workspace-* ClusterRoles are shared by design (one API, one
operator per cluster): see the chart's README notes in NOTES.txt.
*/}}

{{- define "vibeplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vibeplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's name: "<fullname>-<suffix>", at most 63 characters. */}}
{{- define "vibeplane.componentName" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "vibeplane.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "vibeplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vibeplane.labels" -}}
helm.sh/chart: {{ include "vibeplane.chart" . }}
{{ include "vibeplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vibeplane
{{- end }}

{{- define "vibeplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vibeplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's labels and selector. */}}
{{- define "vibeplane.operator.labels" -}}
{{ include "vibeplane.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "vibeplane.operator.selectorLabels" -}}
{{ include "vibeplane.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The model server's labels and selector. */}}
{{- define "vibeplane.modelserver.labels" -}}
{{ include "vibeplane.labels" . }}
app.kubernetes.io/component: modelserver
{{- end }}

{{- define "vibeplane.modelserver.selectorLabels" -}}
{{ include "vibeplane.selectorLabels" . }}
app.kubernetes.io/component: modelserver
{{- end }}

{{- define "vibeplane.operator.name" -}}
{{- include "vibeplane.componentName" (list . "operator") }}
{{- end }}

{{- define "vibeplane.modelserver.name" -}}
{{- include "vibeplane.componentName" (list . "modelserver") }}
{{- end }}

{{- define "vibeplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vibeplane.operator.name" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Where shared ModelDeployments and the budget ledgers live: default the release namespace. */}}
{{- define "vibeplane.platformNamespace" -}}
{{- default .Release.Namespace .Values.platformNamespace.name }}
{{- end }}

{{- define "vibeplane.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* The OpenAI base URL of the builtin generator: the in-chart model server when enabled. */}}
{{- define "vibeplane.builtinModelURL" -}}
{{- if .Values.modelserver.enabled }}
{{- printf "http://%s.%s.svc:%d/openai/v1" (include "vibeplane.modelserver.name" .) (include "vibeplane.platformNamespace" .) (int .Values.modelserver.service.port) }}
{{- else }}
{{- .Values.models.builtinURL }}
{{- end }}
{{- end }}

{{/* The Secret holding S3 credentials (existing, or created from values), or "". */}}
{{- define "vibeplane.s3SecretName" -}}
{{- if .Values.s3.credentials.existingSecret }}
{{- .Values.s3.credentials.existingSecret }}
{{- else if or .Values.s3.credentials.accessKeyId .Values.s3.credentials.secretAccessKey }}
{{- include "vibeplane.componentName" (list . "s3") }}
{{- end }}
{{- end }}

{{/* The RuntimeClass previews run with. */}}
{{- define "vibeplane.runtimeClassName" -}}
{{- .Values.runtimeClass.name }}
{{- end }}
