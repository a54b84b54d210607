{{/* Names are cut to 63 characters: Kubernetes DNS labels allow no more. */}}
{{- define "fedgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fedgate.fullname" -}}
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

{{- define "fedgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fedgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fedgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fedgate.labels" -}}
helm.sh/chart: {{ include "fedgate.chart" . }}
{{ include "fedgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fedgate
{{- end }}

{{- define "fedgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fedgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "fedgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "fedgate.configMapName" -}}
{{- printf "%s-config" (include "fedgate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fedgate.adminSecretName" -}}
{{- .Values.admin.existingSecret | default (printf "%s-admin" (include "fedgate.fullname" .) | trunc 63 | trimSuffix "-") }}
{{- end }}

{{- define "fedgate.adminPort" -}}
{{- dig "admin" "port" 8480 .Values.config | int }}
{{- end }}

{{/* config.yaml as fedgate reads it: values.config plus what the chart owns (admin listener and token, policy file). */}}
{{- define "fedgate.configYaml" -}}
{{- $config := deepCopy .Values.config }}
{{- $admin := merge (dict "host" "0.0.0.0" "token" (dict "env" "FEDGATE_ADMIN_TOKEN")) (get $config "admin" | default dict) }}
{{- $gateway := merge (dict "policyFile" "policy.yaml") (get $config "gateway" | default dict) }}
{{- $_ := set $config "admin" $admin }}
{{- $_ = set $config "gateway" $gateway }}
{{- toYaml $config }}
{{- end }}

{{/* Pod settings shared by the gateway and the bridges. */}}
{{- define "fedgate.podCommon" -}}
serviceAccountName: {{ include "fedgate.serviceAccountName" . }}
# fedgate does not call the Kubernetes API.
automountServiceAccountToken: false
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "fedgate.configMapName" . }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Container settings shared by the gateway and the bridges. */}}
{{- define "fedgate.containerCommon" -}}
image: {{ include "fedgate.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: config
    mountPath: /etc/fedgate
    readOnly: true
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
