{{- define "edge.name" -}}{{ .Chart.Name }}-{{ .Chart.Version }}{{- end -}}
