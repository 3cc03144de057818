{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "imcluster.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name. */}}
{{- define "imcluster.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "imcluster.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "imcluster.labels" -}}
helm.sh/chart: {{ include "imcluster.chart" . }}
app.kubernetes.io/part-of: imcluster
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The operator's selector labels (stable across upgrades: never add to them). */}}
{{- define "imcluster.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "imcluster.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "imcluster.operatorLabels" -}}
{{ include "imcluster.labels" . }}
{{ include "imcluster.operatorSelectorLabels" . }}
{{- end -}}

{{/* Labels on objects that are not the operator (dashboards, rules, examples). */}}
{{- define "imcluster.componentLabels" -}}
{{ include "imcluster.labels" .root }}
app.kubernetes.io/name: {{ include "imcluster.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "imcluster.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-operator" (include "imcluster.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "imcluster.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Name of the IMCluster the KEDA ScaledObject scales. */}}
{{- define "imcluster.kedaTarget" -}}
{{- default .Values.example.name .Values.keda.scaledObject.imcluster -}}
{{- end -}}

{{/* kopf peering name: explicit, or the full name as soon as there is more than one replica; empty = standalone. */}}
{{- define "imcluster.peering" -}}
{{- if .Values.operator.peering -}}
{{- .Values.operator.peering -}}
{{- else if gt (int .Values.operator.replicas) 1 -}}
{{- include "imcluster.fullname" . -}}
{{- end -}}
{{- end -}}
