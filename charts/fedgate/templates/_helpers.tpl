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
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
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

{{/* Each registered bridge's deployment needs, by name (bridges.yaml, which `npm run generate` writes from
bridges/<network>/deployment.json): its HTTP listener (the container port's name, the default of its
config.bridges.<name>.listen.port, what its Service's URL is for), the Secret file it mounts and the env vars it
gets from a Secret. */}}
{{- define "fedgate.bridgeNeeds" -}}
{{- .Files.Get "bridges.yaml" }}
{{- end }}

{{/* config.yaml as fedgate reads it: values.config plus what the chart owns (admin listener and token, policy file),
and for each enabled bridge the defaults its pod needs: for one that serves HTTP, listening on every address and
its Service as publicUrl; the path of its mounted Secret file; {env} references to the variables its Secret
gives it; and, for every bridge, the other enabled HTTP bridges' publicUrl in its attachments.hosts, since their
file links point at in-cluster addresses, which a bridge fetches from only when its config lists them.
Values set in config win; a secret reference is only filled in when config has none. */}}
{{- define "fedgate.configYaml" -}}
{{- $config := deepCopy .Values.config }}
{{- $admin := merge (dict "host" "0.0.0.0" "token" (dict "env" "FEDGATE_ADMIN_TOKEN")) (get $config "admin" | default dict) }}
{{- $gateway := merge (dict "policyFile" "policy.yaml") (get $config "gateway" | default dict) }}
{{- $_ := set $config "admin" $admin }}
{{- $_ = set $config "gateway" $gateway }}
{{- $bridges := get $config "bridges" | default dict }}
{{- $needs := include "fedgate.bridgeNeeds" . | fromYaml }}
{{- range $name, $need := $needs }}
{{- if (index $.Values.bridges $name | default dict).enabled }}
{{- $section := get $bridges $name | default dict }}
{{- /* Every bridge's status listener on the pod's address, for the kubelet's probes and Prometheus. */}}
{{- $defaults := dict "status" (dict "host" "0.0.0.0") }}
{{- if $need.http }}
{{- $_ := set $defaults "listen" (dict "host" "0.0.0.0") }}
{{- $_ = set $defaults "publicUrl" (include "fedgate.bridgeUrl" (list $ $name)) }}
{{- end }}
{{- with $need.secretFile }}
{{- if include "fedgate.secretFileSecret" (list $ $name) }}
{{- $_ := set $defaults .configKey .mountPath }}
{{- end }}
{{- end }}
{{- with $need.secretEnv }}
{{- $env := include "fedgate.secretEnv" (list $ $name) | fromYaml }}
{{- /* Not merged: mergo would mix a {file} reference of the values with the default {env}. */}}
{{- range .vars }}
{{- if and (hasKey $env .env) (not (hasKey $section .configKey)) }}
{{- $_ := set $section .configKey (dict "env" .env) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $need.store }}
{{- with (include "fedgate.bridgeStore" (list $ $name) | fromYaml).config }}
{{- $_ := set $section $need.store.section (merge (get $section $need.store.section) .) }}
{{- end }}
{{- end }}
{{- if or $section $defaults }}
{{- $_ = set $bridges $name (merge $section $defaults) }}
{{- end }}
{{- end }}
{{- end }}
{{- $fileServers := dict }}
{{- range $name, $need := $needs }}
{{- if and $need.http (index $.Values.bridges $name | default dict).enabled }}
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
{{- with (include "fedgate.natsSecrets" . | fromYaml).config }}
{{- $_ = set $config "nats" (merge (get $config "nats") .) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* A bridge's Deployment and Service: (list $ NAME). The full name is cut, not the suffix, so bridges stay apart. */}}
{{- define "fedgate.bridgeFullname" -}}
{{- $suffix := printf "-bridge-%s" (index . 1) }}
{{- include "fedgate.fullname" (index . 0) | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" }}{{ $suffix }}
{{- end }}

{{/* An HTTP bridge's port for its Service and container: config.bridges.<name>.listen.port. (list $ NAME) */}}
{{- define "fedgate.bridgePort" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $http := (index (include "fedgate.bridgeNeeds" $root | fromYaml) $name).http }}
{{- dig "bridges" $name "listen" "port" $http.defaultPort $root.Values.config | int }}
{{- end }}

{{/* An HTTP bridge's URL inside the release's namespace, through its Service: (list $ NAME). */}}
{{- define "fedgate.bridgeUrl" -}}
{{- printf "http://%s:%s" (include "fedgate.bridgeFullname" .) (include "fedgate.bridgePort" .) }}
{{- end }}

{{/* A bridge's status listener port, for its container port, probes and PodMonitor: config.bridges.<name>.status.port.
(list $ NAME) */}}
{{- define "fedgate.statusPort" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $status := (index (include "fedgate.bridgeNeeds" $root | fromYaml) $name).status }}
{{- dig "bridges" $name "status" "port" $status.defaultPort $root.Values.config | int }}
{{- end }}

{{/* Mistakes that would leave a bridge's probes failing, caught at install: (list $ NAME). */}}
{{- define "fedgate.statusChecks" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $host := dig "bridges" $name "status" "host" "0.0.0.0" $root.Values.config }}
{{- if has $host (list "127.0.0.1" "localhost" "::1") }}
{{- fail (printf "config.bridges.%s.status.host: %s is not reachable by the kubelet's probes; leave it out (the chart sets 0.0.0.0)" $name $host) }}
{{- end }}
{{- $port := include "fedgate.statusPort" . }}
{{- if eq $port "0" }}
{{- fail (printf "config.bridges.%s.status.port: 0 picks a free port, which the probes cannot name; leave it out or give one" $name) }}
{{- end }}
{{- if and (index (include "fedgate.bridgeNeeds" $root | fromYaml) $name).http (eq $port (include "fedgate.bridgePort" .)) }}
{{- fail (printf "config.bridges.%s.status.port: %s is also its listen.port; give the status listener a port of its own" $name $port) }}
{{- end }}
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

{{/* A bridge's store (its needs' store) when config.bridges.NAME.<section>.enabled: as YAML {volumes, volumeMounts,
config, claim}, config being what <section> gets unless it sets it (storeKeyFile from the key Secret, storeFile on
the claim), claim the name of the PersistentVolumeClaim the chart creates (empty: an existing one, or none). A store
whose files the config already places gets no claim; one whose key it already places gets no Secret. Empty when
the store is off. (list $ NAME) */}}
{{- define "fedgate.bridgeStore" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- with (index (include "fedgate.bridgeNeeds" $root | fromYaml) $name).store }}
{{- $section := dig "bridges" $name .section dict $root.Values.config }}
{{- if $section.enabled }}
{{- $values := dig .values dict (index $root.Values.bridges $name | default dict) }}
{{- $volumes := list }}
{{- $mounts := list }}
{{- $config := dict }}
{{- $claim := "" }}
{{- $secret := dig "keySecret" "name" "" $values }}
{{- if and $secret (not (hasKey $section "storeKeyFile")) }}
{{- $volume := printf "%s-store-key" $name }}
{{- $items := list (dict "key" (dig "keySecret" "key" .defaultKey $values) "path" (base .keyMountPath)) }}
{{- $volumes = append $volumes (dict "name" $volume "secret" (dict "secretName" $secret "items" $items)) }}
{{- $mounts = append $mounts (dict "name" $volume "mountPath" (dir .keyMountPath) "readOnly" true) }}
{{- $_ := set $config "storeKeyFile" .keyMountPath }}
{{- end }}
{{- if not (hasKey $section "storeFile") }}
{{- $existing := dig "persistence" "existingClaim" "" $values }}
{{- if not $existing }}
{{- $claim = printf "%s-store" (include "fedgate.bridgeFullname" (list $root $name)) }}
{{- end }}
{{- $volume := printf "%s-store" $name }}
{{- $volumes = append $volumes (dict "name" $volume "persistentVolumeClaim" (dict "claimName" (default $claim $existing))) }}
{{- $mounts = append $mounts (dict "name" $volume "mountPath" .dataMountPath) }}
{{- $_ := set $config "storeFile" (printf "%s/%s" .dataMountPath .fileName) }}
{{- end }}
{{- toYaml (dict "volumes" $volumes "volumeMounts" $mounts "config" $config "claim" $claim) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A store that would leave the bridge without its key, caught at install: (list $ NAME). */}}
{{- define "fedgate.bridgeStoreChecks" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- with (index (include "fedgate.bridgeNeeds" $root | fromYaml) $name).store }}
{{- $section := dig "bridges" $name .section dict $root.Values.config }}
{{- if $section.enabled }}
{{- if not (or (dig .values "keySecret" "name" "" (index $root.Values.bridges $name | default dict)) (hasKey $section "storeKeyFile")) }}
{{- fail (printf "bridges.%s.%s.keySecret.name: name the Secret holding the key %s are encrypted with, since config.bridges.%s.%s.enabled is true (or set config.bridges.%s.%s.storeKeyFile and mount it with extraVolumes)" $name .values .holds $name .section $name .section) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the Secret a bridge's file (its needs' secretFile) is mounted from; empty when the chart mounts none.
(list $ NAME) */}}
{{- define "fedgate.secretFileSecret" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- with (index (include "fedgate.bridgeNeeds" $root | fromYaml) $name).secretFile }}
{{- dig .values "name" "" (index $root.Values.bridges $name | default dict) }}
{{- end }}
{{- end }}

{{/* The env vars a bridge's container gets from its Secret (its needs' secretEnv), as YAML (VAR: key in the
Secret); empty without a Secret. A variable that is not required is left out when its key is empty.
(list $ NAME) */}}
{{- define "fedgate.secretEnv" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- with (index (include "fedgate.bridgeNeeds" $root | fromYaml) $name).secretEnv }}
{{- $secret := dig .values dict (index $root.Values.bridges $name | default dict) }}
{{- if get $secret "name" }}
{{- range $var := .vars }}
{{- with dig $var.secretKey $var.defaultKey $secret }}
{{ $var.env }}: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Mistakes that would leave a bridge crash-looping for want of its secrets, caught at install: no file and no
Secret for it, no value and no Secret for a required one, or an {env} reference to a variable its container does
not get. (list $ NAME) */}}
{{- define "fedgate.bridgeSecretChecks" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $need := index (include "fedgate.bridgeNeeds" $root | fromYaml) $name }}
{{- $section := dig "bridges" $name dict $root.Values.config }}
{{- with $need.secretFile }}
{{- if not (or (include "fedgate.secretFileSecret" (list $root $name)) (get $section .configKey)) }}
{{- fail (printf "bridges.%s.%s.name: name the Secret holding %s (or set config.bridges.%s.%s and mount the file with extraVolumes)" $name .values .holds $name .configKey) }}
{{- end }}
{{- end }}
{{- with $need.secretEnv }}
{{- $secretEnv := . }}
{{- $env := include "fedgate.secretEnv" (list $root $name) | fromYaml }}
{{- range $var := .vars }}
{{- if and $var.required (not (or (hasKey $env $var.env) (get $section $var.configKey))) }}
{{- fail (printf "bridges.%s.%s.name: name the Secret holding %s (or set config.bridges.%s.%s and provide it with extraEnv or extraVolumes)" $name $secretEnv.values $secretEnv.holds $name $var.configKey) }}
{{- end }}
{{- end }}
{{- range $root.Values.extraEnv }}
{{- $_ := set $env .name "extraEnv" }}
{{- end }}
{{- range $var := .vars }}
{{- $secret := get $section $var.configKey }}
{{- if and (kindIs "map" $secret) (hasKey $secret "env") }}
{{- if not (hasKey $env (toString $secret.env)) }}
{{- fail (printf "config.bridges.%s.%s: the bridge's container has no %s; set bridges.%s.%s (with the matching key) or add it to extraEnv" $name $var.configKey (toString $secret.env) $name $secretEnv.values) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod settings shared by the gateway and the bridges: (dict "root" $ "volumes" LIST "component" VALUES), LIST the
component's own volumes, VALUES its values (gateway, bridges.<name>): a nodeSelector, affinity or tolerations
there replaces the global one, even when empty; its extraVolumes come after the global ones. */}}
{{- define "fedgate.podCommon" -}}
{{- $root := .root -}}
{{- $component := .component | default dict -}}
serviceAccountName: {{ include "fedgate.serviceAccountName" $root }}
# fedgate does not call the Kubernetes API.
automountServiceAccountToken: false
{{- with $root.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- range $key := list "nodeSelector" "affinity" "tolerations" }}
{{- with ternary (get $component $key) (get $root.Values $key) (hasKey $component $key) }}
{{ $key }}:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- with $root.Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "fedgate.configMapName" $root }}
  {{- with .volumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with (include "fedgate.natsSecrets" $root | fromYaml).volumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with $root.Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with $component.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Container settings shared by the gateway and the bridges: (dict "root" $ "volumeMounts" LIST "component" VALUES). */}}
{{- define "fedgate.containerCommon" -}}
{{- $root := .root -}}
{{- $component := .component | default dict -}}
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
  {{- with (include "fedgate.natsSecrets" $root | fromYaml).volumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with $root.Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with $component.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The sha256 of what the bridge NAME reads of config.yaml: the shared sections and its own bridge's. (list $ NAME) */}}
{{- define "fedgate.bridgeConfigChecksum" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $config := include "fedgate.configYaml" $root | fromYaml }}
{{- $own := omit $config "gateway" "links" "admin" "federation" "bridges" }}
{{- $_ := set $own "bridge" (dig "bridges" $name dict $config) }}
{{- toYaml $own | sha256sum }}
{{- end }}

{{/* What a team adds to every pod template: podLabels (never in selectors) and podAnnotations. ($) */}}
{{- define "fedgate.extraPodLabels" -}}
{{- with .Values.podLabels }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* podAnnotations, the component's over the global ones: (list $ VALUES). */}}
{{- define "fedgate.extraPodAnnotations" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 | default dict }}
{{- with merge (deepCopy ($component.podAnnotations | default dict)) (deepCopy ($root.Values.podAnnotations | default dict)) }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* The TCP ports of a comma-separated list of URLs, as NetworkPolicy ports: each URL's port, or its scheme's. */}}
{{- define "fedgate.urlPorts" -}}
{{- $defaults := dict "nats" 4222 "tls" 4222 "ws" 80 "wss" 443 "http" 80 "https" 443 }}
{{- $ports := list }}
{{- range splitList "," . }}
{{- $url := urlParse (trim .) }}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $url.host) }}
{{- $entry := dict "port" (int (default (get $defaults $url.scheme | default 4222) $port)) "protocol" "TCP" }}
{{- if not (has $entry $ports) }}
{{- $ports = append $ports $entry }}
{{- end }}
{{- end }}
{{- toYaml $ports }}
{{- end }}

{{/* NetworkPolicy ports as the values give them, TCP unless they say otherwise. (LIST) */}}
{{- define "fedgate.policyPorts" -}}
{{- $ports := list }}
{{- range . }}
{{- $ports = append $ports (merge (deepCopy .) (dict "protocol" "TCP")) }}
{{- end }}
{{- toYaml $ports }}
{{- end }}

{{/* An egress rule to PEERS on PORTS; no peers: any destination on those ports. (dict "to" PEERS "ports" PORTS) */}}
{{- define "fedgate.egressRule" -}}
{{- $rule := dict "ports" .ports }}
{{- with .to }}
{{- $_ := set $rule "to" . }}
{{- end }}
{{- toYaml (list $rule) }}
{{- end }}

{{/* The pods of one component as a NetworkPolicy peer: (list $ COMPONENT). */}}
{{- define "fedgate.componentPeer" -}}
{{- $labels := include "fedgate.selectorLabels" (index . 0) | fromYaml }}
{{- $_ := set $labels "app.kubernetes.io/component" (index . 1) }}
{{- toYaml (dict "podSelector" (dict "matchLabels" $labels)) }}
{{- end }}

{{/* NATS's TLS files and login from existing Secrets (values nats.tlsSecret, nats.credentialsSecret), for every pod:
as YAML {volumes, volumeMounts, config}, config being what config.nats gets unless it sets it. ($) */}}
{{- define "fedgate.natsSecrets" -}}
{{- $nats := .Values.nats | default dict }}
{{- $volumes := list }}
{{- $mounts := list }}
{{- $config := dict }}
{{- with $nats.tlsSecret }}
{{- if .name }}
{{- $items := list }}
{{- $tls := dict }}
{{- range $file, $key := dict "caFile" (.caKey | default "ca.crt") "certFile" (ternary "tls.crt" .certKey (not (hasKey . "certKey"))) "keyFile" (ternary "tls.key" .keyKey (not (hasKey . "keyKey"))) }}
{{- if and $key (or (ne $file "keyFile") (hasKey $tls "certFile")) }}
{{- $items = append $items (dict "key" $key "path" $key) }}
{{- $_ := set $tls $file (printf "/etc/fedgate-nats/tls/%s" $key) }}
{{- end }}
{{- end }}
{{- $volumes = append $volumes (dict "name" "nats-tls" "secret" (dict "secretName" .name "items" $items)) }}
{{- $mounts = append $mounts (dict "name" "nats-tls" "mountPath" "/etc/fedgate-nats/tls" "readOnly" true) }}
{{- $_ := set $config "tls" $tls }}
{{- end }}
{{- end }}
{{- with $nats.credentialsSecret }}
{{- if .name }}
{{- $keys := dict }}
{{- range $field := list "credsKey" "nkeySeedKey" "passwordKey" "tokenKey" }}
{{- with index $.Values.nats.credentialsSecret $field }}
{{- $_ := set $keys $field . }}
{{- end }}
{{- end }}
{{- if gt (len $keys) 1 }}
{{- fail (printf "nats.credentialsSecret: one of credsKey, nkeySeedKey, passwordKey or tokenKey, not %s: NATS takes one login" (keys $keys | sortAlpha | join " and ")) }}
{{- end }}
{{- if eq (len $keys) 0 }}
{{- fail "nats.credentialsSecret: set credsKey (a .creds file), nkeySeedKey (an nkey seed), passwordKey (with config.nats.user) or tokenKey" }}
{{- end }}
{{- range $other := list "password" "token" "credsFile" "nkeySeed" }}
{{- if hasKey ($.Values.config.nats | default dict) $other }}
{{- fail (printf "config.nats.%s: NATS takes one login, and nats.credentialsSecret gives one; remove one of them" $other) }}
{{- end }}
{{- end }}
{{- if and .passwordKey (not ($.Values.config.nats | default dict).user) }}
{{- fail "nats.credentialsSecret.passwordKey: set config.nats.user, whose password it is" }}
{{- end }}
{{- $key := .credsKey | default .nkeySeedKey | default .passwordKey | default .tokenKey }}
{{- $volumes = append $volumes (dict "name" "nats-login" "secret" (dict "secretName" .name "items" (list (dict "key" $key "path" $key)))) }}
{{- $mounts = append $mounts (dict "name" "nats-login" "mountPath" "/etc/fedgate-nats/login" "readOnly" true) }}
{{- $file := printf "/etc/fedgate-nats/login/%s" $key }}
{{- if .credsKey }}
{{- $_ := set $config "credsFile" $file }}
{{- else if .nkeySeedKey }}
{{- $_ := set $config "nkeySeed" (dict "file" $file) }}
{{- else if .passwordKey }}
{{- $_ := set $config "password" (dict "file" $file) }}
{{- else }}
{{- $_ := set $config "token" (dict "file" $file) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml (dict "volumes" $volumes "volumeMounts" $mounts "config" $config) }}
{{- end }}

{{/* The admin token of the Secret the chart creates, base64: the one already in the cluster, so that upgrades do
not change it, or a new random one. Made once per render and kept on the root context, so that the Secret and
the checksum that rolls the core's pods when it changes agree. ($) */}}
{{- define "fedgate.adminToken" -}}
{{- if not (hasKey $ "fedgateAdminToken") }}
{{- $token := randAlphaNum 48 | b64enc }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "fedgate.adminSecretName" .) }}
{{- if $existing }}
{{- with $existing.data }}
{{- with index . $.Values.admin.secretKey }}
{{- $token = . }}
{{- end }}
{{- end }}
{{- end }}
{{- $_ := set $ "fedgateAdminToken" $token }}
{{- end }}
{{- get $ "fedgateAdminToken" }}
{{- end }}

{{/* deploymentAnnotations on a Deployment, the component's over the global ones: (list $ VALUES). */}}
{{- define "fedgate.deploymentAnnotations" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 | default dict }}
{{- with merge (deepCopy ($component.deploymentAnnotations | default dict)) (deepCopy ($root.Values.deploymentAnnotations | default dict)) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
