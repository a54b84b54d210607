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
and for each enabled bridge the defaults its pod needs: for one that serves HTTP, listening on every address and
its Service as publicUrl; the Matrix bridge's mounted registration; the Stashcat bridge's credentials from env;
and, for every bridge, the other enabled HTTP bridges' publicUrl in its attachments.hosts, since their file links
point at in-cluster addresses, which a bridge fetches from only when its config lists them.
Values set in config win; a secret reference is only filled in when config has none. */}}
{{- define "fedgate.configYaml" -}}
{{- $config := deepCopy .Values.config }}
{{- $admin := merge (dict "host" "0.0.0.0" "token" (dict "env" "FEDGATE_ADMIN_TOKEN")) (get $config "admin" | default dict) }}
{{- $gateway := merge (dict "policyFile" "policy.yaml") (get $config "gateway" | default dict) }}
{{- $_ := set $config "admin" $admin }}
{{- $_ = set $config "gateway" $gateway }}
{{- $bridges := get $config "bridges" | default dict }}
{{- range $name, $http := include "fedgate.httpBridges" . | fromYaml }}
{{- if (index $.Values.bridges $name | default dict).enabled }}
{{- $section := get $bridges $name | default dict }}
{{- $defaults := dict "listen" (dict "host" "0.0.0.0") "publicUrl" (include "fedgate.bridgeUrl" (list $ $name)) }}
{{- if and (eq $name "matrix") (include "fedgate.matrixRegistrationSecret" $) }}
{{- $_ = set $defaults "registrationFile" (include "fedgate.matrixRegistrationFile" $) }}
{{- end }}
{{- if eq $name "stashcat" }}
{{- $env := include "fedgate.stashcatCredentialEnv" $ | fromYaml }}
{{- /* Not merged: mergo would mix a {file} reference of the values with the default {env}. */}}
{{- if and (hasKey $env "STASHCAT_PASSWORD") (not (hasKey $section "password")) }}
{{- $_ = set $section "password" (dict "env" "STASHCAT_PASSWORD") }}
{{- end }}
{{- if and (hasKey $env "STASHCAT_ENCRYPTION_PASSWORD") (not (hasKey $section "encryptionPassword")) }}
{{- $_ = set $section "encryptionPassword" (dict "env" "STASHCAT_ENCRYPTION_PASSWORD") }}
{{- end }}
{{- end }}
{{- $_ = set $bridges $name (merge $section $defaults) }}
{{- end }}
{{- end }}
{{- $fileServers := dict }}
{{- range $name, $http := include "fedgate.httpBridges" . | fromYaml }}
{{- if (index $.Values.bridges $name | default dict).enabled }}
{{- $_ := set $fileServers $name (get (get $bridges $name) "publicUrl") }}
{{- end }}
{{- end }}
{{- range $name, $bridge := .Values.bridges }}
{{- if and (kindIs "map" $bridge) $bridge.enabled (hasKey $bridges $name) }}
{{- $section := get $bridges $name }}
{{- $attachments := get $section "attachments" | default dict }}
{{- $hosts := get $attachments "hosts" | default list }}
{{- range $other, $url := $fileServers }}
{{- if and (ne $other $name) (not (has $url $hosts)) }}
{{- $hosts = append $hosts $url }}
{{- end }}
{{- end }}
{{- if $hosts }}
{{- $_ := set $attachments "hosts" $hosts }}
{{- $_ = set $section "attachments" $attachments }}
{{- end }}
{{- end }}
{{- end }}
{{- if $bridges }}
{{- $_ = set $config "bridges" $bridges }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* A bridge's Deployment and Service: (list $ NAME). The full name is cut, not the suffix, so bridges stay apart. */}}
{{- define "fedgate.bridgeFullname" -}}
{{- $suffix := printf "-bridge-%s" (index . 1) }}
{{- include "fedgate.fullname" (index . 0) | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" }}{{ $suffix }}
{{- end }}

{{/* The bridges that serve HTTP to other pods, by name: the container port's name, the bridge's own default for
config.bridges.<name>.listen.port, and what NOTES.txt says the Service's URL is for. Each enabled one gets a
ClusterIP Service on that port, TCP probes, listen.host 0.0.0.0 and its Service as publicUrl. */}}
{{- define "fedgate.httpBridges" -}}
matrix:
  label: Matrix
  portName: appservice
  defaultPort: 9000
  url: the registration's url, for the homeserver
stashcat:
  label: Stashcat
  portName: files
  defaultPort: 9100
  url: where the other bridges fetch Stashcat files
{{- end }}

{{/* An HTTP bridge's port for its Service and container: config.bridges.<name>.listen.port. (list $ NAME) */}}
{{- define "fedgate.bridgePort" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $http := index (include "fedgate.httpBridges" $root | fromYaml) $name }}
{{- dig "bridges" $name "listen" "port" $http.defaultPort $root.Values.config | int }}
{{- end }}

{{/* An HTTP bridge's URL inside the release's namespace, through its Service: (list $ NAME). */}}
{{- define "fedgate.bridgeUrl" -}}
{{- printf "http://%s:%s" (include "fedgate.bridgeFullname" .) (include "fedgate.bridgePort" .) }}
{{- end }}

{{/* Mistakes that would leave an HTTP bridge unreachable, caught at install: (list $ NAME). */}}
{{- define "fedgate.httpBridgeChecks" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $host := dig "bridges" $name "listen" "host" "0.0.0.0" $root.Values.config }}
{{- if has $host (list "127.0.0.1" "localhost" "::1") }}
{{- fail (printf "config.bridges.%s.listen.host: %s is not reachable from other pods; leave it out (the chart sets 0.0.0.0)" $name $host) }}
{{- end }}
{{- if eq (include "fedgate.bridgePort" .) "0" }}
{{- fail (printf "config.bridges.%s.listen.port: 0 picks a free port, which the Service and the probes cannot name; leave it out or give one" $name) }}
{{- end }}
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

{{/* Mistakes that would leave the Matrix bridge crash-looping, caught at install. */}}
{{- define "fedgate.matrixChecks" -}}
{{- $matrix := dig "bridges" "matrix" dict .Values.config }}
{{- if not (or (include "fedgate.matrixRegistrationSecret" .) (get $matrix "registrationFile")) }}
{{- fail "bridges.matrix.registrationSecret.name: name the Secret holding the Matrix bridge's registration file (or set config.bridges.matrix.registrationFile and mount the file with extraVolumes)" }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the Stashcat service account's passwords; empty when the chart exposes none. */}}
{{- define "fedgate.stashcatCredentialsSecret" -}}
{{- dig "credentialsSecret" "name" "" (.Values.bridges.stashcat | default dict) }}
{{- end }}

{{/* The env vars the Stashcat bridge's container gets from that Secret, as YAML (NAME: key in the Secret); empty
without a Secret. No encryptionPasswordKey: the bridge opens the account's key with the login password. */}}
{{- define "fedgate.stashcatCredentialEnv" -}}
{{- $secret := dig "credentialsSecret" dict (.Values.bridges.stashcat | default dict) }}
{{- if include "fedgate.stashcatCredentialsSecret" . }}
STASHCAT_PASSWORD: {{ dig "passwordKey" "password" $secret | quote }}
{{- with dig "encryptionPasswordKey" "encryptionPassword" $secret }}
STASHCAT_ENCRYPTION_PASSWORD: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Mistakes that would leave the Stashcat bridge crash-looping, caught at install: no password at all, or an
{env} reference to a variable its container does not get. */}}
{{- define "fedgate.stashcatChecks" -}}
{{- $stashcat := dig "bridges" "stashcat" dict .Values.config }}
{{- $env := include "fedgate.stashcatCredentialEnv" . | fromYaml }}
{{- if not (or $env (get $stashcat "password")) }}
{{- fail "bridges.stashcat.credentialsSecret.name: name the Secret holding the Stashcat service account's password (or set config.bridges.stashcat.password and provide it with extraEnv or extraVolumes)" }}
{{- end }}
{{- range .Values.extraEnv }}
{{- $_ := set $env .name "extraEnv" }}
{{- end }}
{{- range $key := list "password" "encryptionPassword" }}
{{- $secret := get $stashcat $key }}
{{- if and (kindIs "map" $secret) (hasKey $secret "env") }}
{{- if not (hasKey $env (toString $secret.env)) }}
{{- fail (printf "config.bridges.stashcat.%s: the bridge's container has no %s; set bridges.stashcat.credentialsSecret (with the matching key) or add it to extraEnv" $key (toString $secret.env)) }}
{{- end }}
{{- end }}
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
