{{- define "common.labels" -}}
app.kubernetes.io/part-of: {{ .Release.Name }}
environment: {{ .Values.global.environment | default "dev" }}
{{- end }}
