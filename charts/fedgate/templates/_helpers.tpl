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

{{/* config.yaml as fedgate reads it: values.config plus what the chart owns (admin listener and token, policy file),
and for an enabled Matrix bridge the defaults a pod needs (listen on every address, the mounted registration). */}}
{{- define "fedgate.configYaml" -}}
{{- $config := deepCopy .Values.config }}
{{- $admin := merge (dict "host" "0.0.0.0" "token" (dict "env" "FEDGATE_ADMIN_TOKEN")) (get $config "admin" | default dict) }}
{{- $gateway := merge (dict "policyFile" "policy.yaml") (get $config "gateway" | default dict) }}
{{- $_ := set $config "admin" $admin }}
{{- $_ = set $config "gateway" $gateway }}
{{- if (.Values.bridges.matrix | default dict).enabled }}
{{- $defaults := dict "listen" (dict "host" "0.0.0.0") }}
{{- if include "fedgate.matrixRegistrationSecret" . }}
{{- $_ = set $defaults "registrationFile" (include "fedgate.matrixRegistrationFile" .) }}
{{- end }}
{{- $bridges := get $config "bridges" | default dict }}
{{- $_ = set $bridges "matrix" (merge (get $bridges "matrix" | default dict) $defaults) }}
{{- $_ = set $config "bridges" $bridges }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* A bridge's Deployment and Service: (list $ NAME). The full name is cut, not the suffix, so bridges stay apart. */}}
{{- define "fedgate.bridgeFullname" -}}
{{- $suffix := printf "-bridge-%s" (index . 1) }}
{{- include "fedgate.fullname" (index . 0) | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" }}{{ $suffix }}
{{- end }}

{{/* The Matrix bridge's port for the homeserver and the other bridges: config.bridges.matrix.listen.port. */}}
{{- define "fedgate.matrixPort" -}}
{{- dig "bridges" "matrix" "listen" "port" 9000 .Values.config | int }}
{{- end }}

{{/* Name of the Secret holding the Matrix registration file; empty when the chart mounts none. */}}
{{- define "fedgate.matrixRegistrationSecret" -}}
{{- dig "registrationSecret" "name" "" (.Values.bridges.matrix | default dict) }}
{{- end }}

{{/* Where the registration Secret is mounted: a folder of its own, not under the ConfigMap's read-only /etc/fedgate. */}}
{{- define "fedgate.matrixRegistrationDir" -}}
/etc/fedgate-matrix
{{- end }}

{{- define "fedgate.matrixRegistrationFile" -}}
{{- include "fedgate.matrixRegistrationDir" . }}/registration.yaml
{{- end }}

{{/* Mistakes that would leave the Matrix bridge crash-looping or unreachable, caught at install. */}}
{{- define "fedgate.matrixChecks" -}}
{{- $matrix := dig "bridges" "matrix" dict .Values.config }}
{{- if not (or (include "fedgate.matrixRegistrationSecret" .) (get $matrix "registrationFile")) }}
{{- fail "bridges.matrix.registrationSecret.name: name the Secret holding the Matrix bridge's registration file (or set config.bridges.matrix.registrationFile and mount the file with extraVolumes)" }}
{{- end }}
{{- $host := dig "listen" "host" "0.0.0.0" $matrix }}
{{- if has $host (list "127.0.0.1" "localhost" "::1") }}
{{- fail (printf "config.bridges.matrix.listen.host: %s is not reachable from other pods; leave it out (the chart sets 0.0.0.0)" $host) }}
{{- end }}
{{- end }}

{{/* Pod settings shared by the gateway and the bridges: (dict "root" $ "volumes" LIST), LIST the component's own volumes. */}}
{{- define "fedgate.podCommon" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "fedgate.serviceAccountName" $root }}
# fedgate does not call the Kubernetes API.
automountServiceAccountToken: false
{{- with $root.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "fedgate.configMapName" $root }}
  {{- with .volumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with $root.Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Container settings shared by the gateway and the bridges: (dict "root" $ "volumeMounts" LIST). */}}
{{- define "fedgate.containerCommon" -}}
{{- $root := .root -}}
image: {{ include "fedgate.image" $root }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
{{- with $root.Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: config
    mountPath: /etc/fedgate
    readOnly: true
  {{- with .volumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with $root.Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
