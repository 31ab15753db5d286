{{/* Name of the release's objects. */}}
{{- define "evident.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "evident.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "evident.selectorLabels" . }}
{{- end -}}

{{- define "evident.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ ternary "node-agent" "sidecar" (eq .Values.mode "daemonset") }}
{{- end -}}

{{- define "evident.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The evident container, shared by both modes. */}}
{{- define "evident.container" -}}
- name: evident
  image: {{ include "evident.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["run", "--config", "/etc/evident/evident.toml"]
  env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_NAMESPACE
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: NODE_NAME
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: EVIDENT_LOG_FORMAT
      value: {{ .Values.log.format | quote }}
    - name: EVIDENT_LOG
      value: {{ .Values.log.level | quote }}
  ports:
    - name: evident-health
      containerPort: {{ .Values.health.port }}
  livenessProbe:
    httpGet: {path: /healthz, port: evident-health}
    initialDelaySeconds: 5
    periodSeconds: 30
    timeoutSeconds: 5
    failureThreshold: 3
  readinessProbe:
    httpGet: {path: /readyz, port: evident-health}
    initialDelaySeconds: 5
    periodSeconds: 15
    timeoutSeconds: 5
  securityContext:
    {{- if eq .Values.mode "daemonset" }}
    # Root only so that the one added capability takes effect; nothing else is allowed.
    runAsUser: 0
    runAsGroup: 0
    runAsNonRoot: false
    {{- else }}
    runAsNonRoot: true
    {{- end }}
    privileged: false
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: ["ALL"]
      {{- if eq .Values.mode "daemonset" }}
      add: ["DAC_READ_SEARCH"]
      {{- end }}
    seccompProfile:
      type: RuntimeDefault
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  volumeMounts:
    {{- if eq .Values.mode "daemonset" }}
    - {name: host-root, mountPath: /host, readOnly: true, recursiveReadOnly: IfPossible}
    {{- end }}
    - {name: evident-config, mountPath: /etc/evident, readOnly: true}
    {{- if .Values.signing.existingSecret }}
    - {name: evident-key, mountPath: /var/run/secrets/evident, readOnly: true}
    {{- end }}
    - {name: evident-state, mountPath: {{ .Values.config.stateDir | quote }}}
    - {name: evident-tmp, mountPath: /tmp}
{{- end -}}

{{/* The evident volumes, shared by both modes. */}}
{{- define "evident.volumes" -}}
- name: evident-config
  configMap: {name: {{ include "evident.fullname" . }}}
{{- if .Values.signing.existingSecret }}
- name: evident-key
  secret:
    secretName: {{ .Values.signing.existingSecret | quote }}
    {{- if eq .Values.mode "daemonset" }}
    # Owner-only: the daemonset agent runs as root (a key others can read is refused).
    defaultMode: 0400
    {{- else }}
    # Root-owned, group-readable for the pod's fsGroup: the agent's own group, the one
    # group access the agent accepts on a key.
    defaultMode: 0440
    {{- end }}
{{- end }}
- name: evident-tmp
  emptyDir: {medium: Memory, sizeLimit: 16Mi}
{{- end -}}
