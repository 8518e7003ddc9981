{{- define "shop.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "shop.fullname" -}}
{{- if eq .Release.Name .Chart.Name -}}
{{ .Release.Name }}
{{- else -}}
{{ printf "%s-%s" .Release.Name .Chart.Name }}
{{- end -}}
{{- end -}}
{{- define "shop.chart" -}}{{ printf "%s-%s" .Chart.Name .Chart.Version }}{{- end -}}
{{- define "shop.selectorLabels" -}}
app.kubernetes.io/name: {{ template "shop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "shop.labels" -}}
helm.sh/chart: {{ template "shop.chart" . }}
{{ template "shop.selectorLabels" . }}
app.kubernetes.io/version: {{ printf "%q" .Chart.AppVersion }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- range $k, $v := .Values.extraLabels }}
{{ $k }}: {{ printf "%q" $v }}
{{- end }}
{{- end -}}
{{- define "shop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ if .Values.serviceAccount.name }}{{ .Values.serviceAccount.name }}{{ else }}{{ template "shop.fullname" . }}{{ end }}
{{- else -}}
{{ if .Values.serviceAccount.name }}{{ .Values.serviceAccount.name }}{{ else }}default{{ end }}
{{- end -}}
{{- end -}}
{{- define "shop.container" -}}
- name: {{ .name }}
  image: {{ printf "%q" .image }}
  ports:
    - name: admin
      containerPort: {{ .port }}
      protocol: TCP
{{- end -}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ template "shop.serviceAccountName" . }}
  labels:
{{ template "shop.labels" . }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- range $k, $v := . }}
    {{ $k }}: {{ printf "%q" $v }}
    {{- end }}
  {{- end }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ template "shop.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
{{ template "shop.labels" . }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
{{ template "shop.selectorLabels" . }}
  template:
    metadata:
      {{- with .Values.podAnnotations }}
      annotations:
        {{- range $k, $v := . }}
        {{ $k }}: {{ printf "%q" $v }}
        {{- end }}
      {{- end }}
      labels:
{{ template "shop.selectorLabels" . }}
    spec:
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ .name }}
        {{- end }}
      {{- end }}
      serviceAccountName: {{ template "shop.serviceAccountName" . }}
      securityContext:
        fsGroup: {{ .Values.podSecurityContext.fsGroup }}
        runAsNonRoot: {{ .Values.podSecurityContext.runAsNonRoot }}
      containers:
        - name: {{ .Chart.Name }}
          securityContext:
            {{- range $k, $v := .Values.securityContext }}
            {{ $k }}: {{ $v }}
            {{- end }}
          image: "{{ .Values.image.repository }}:{{ or .Values.image.tag .Chart.AppVersion }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            {{- range .Values.service.ports }}
            - name: {{ .name }}
              containerPort: {{ .targetPort }}
              protocol: TCP
            {{- end }}
          env:
            {{- range $i, $e := .Values.env }}
            - name: {{ $e.name }}
              value: {{ printf "%q" $e.value }}
            {{- end }}
            {{- range $k, $v := .Values.config }}
            - name: {{ printf "CFG_%s" $k }}
              value: {{ printf "%q" $v }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: {{ .Values.probes.liveness.path }}
              port: http
            initialDelaySeconds: {{ .Values.probes.liveness.initialDelaySeconds }}
            periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
          readinessProbe:
            httpGet:
              path: {{ .Values.probes.readiness.path }}
              port: http
            initialDelaySeconds: {{ .Values.probes.readiness.initialDelaySeconds }}
            periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
          resources:
            limits:
              cpu: {{ .Values.resources.limits.cpu }}
              memory: {{ .Values.resources.limits.memory }}
            requests:
              cpu: {{ .Values.resources.requests.cpu }}
              memory: {{ .Values.resources.requests.memory }}
          {{- if .Values.persistence.enabled }}
          volumeMounts:
            - name: data
              mountPath: /data
          {{- end }}
        {{- range .Values.sidecars }}
{{ template "shop.container" . }}
        {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- range $k, $v := . }}
        {{ $k }}: {{ $v }}
        {{- end }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- range . }}
        - key: {{ .key }}
          operator: {{ .operator }}
          value: {{ .value }}
          effect: {{ .effect }}
        {{- end }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ template "shop.fullname" . }}
  labels:
{{ template "shop.labels" . }}
spec:
  type: {{ .Values.service.type }}
  ports:
    {{- range $i, $p := .Values.service.ports }}
    - port: {{ $p.port }}
      targetPort: {{ $p.targetPort }}
      protocol: TCP
      name: {{ $p.name }}{{ if eq $i 0 }} # primary{{ end }}
    {{- end }}
  selector:
{{ template "shop.selectorLabels" . }}
{{- if .Values.ingress.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ template "shop.fullname" . }}
  labels:
{{ template "shop.labels" . }}
  {{- with .Values.ingress.annotations }}
  annotations:
    {{- range $k, $v := . }}
    {{ $k }}: {{ printf "%q" $v }}
    {{- end }}
  {{- end }}
spec:
  ingressClassName: {{ .Values.ingress.className }}
  {{- if .Values.ingress.tls }}
  tls:
    {{- range .Values.ingress.tls }}
    - hosts:
        {{- range .hosts }}
        - {{ printf "%q" . }}
        {{- end }}
      secretName: {{ .secretName }}
    {{- end }}
  {{- end }}
  rules:
    {{- range .Values.ingress.hosts }}
    - host: {{ printf "%q" .host }}
      http:
        paths:
          {{- range .paths }}
          - path: {{ .path }}
            pathType: {{ .pathType }}
            backend:
              service:
                name: {{ template "shop.fullname" $ }}
                port:
                  number: {{ (index $.Values.service.ports 0).port }}
          {{- end }}
    {{- end }}
{{- end }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "%s-config" .Release.Name }}
data:
  {{- range $k, $v := .Values.config }}
  {{ $k }}.conf: |
    key={{ $k }}
    value={{ $v }}
    length={{ len $v }}
  {{- end }}
  ratio: {{ printf "%v" .Values.ratio }}
  big: {{ .Values.big }}
  replicas: {{ printf "%d" .Values.replicaCount }}
{{- if .Values.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ template "shop.fullname" . }}
  labels:
{{ template "shop.labels" . }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ template "shop.fullname" . }}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    {{- with .Values.autoscaling.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with .Values.autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
{{- end }}
{{- if .Values.persistence.enabled }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ printf "%s-data" .Release.Name }}
spec:
  accessModes:
    {{- range .Values.persistence.accessModes }}
    - {{ . }}
    {{- end }}
  storageClassName: {{ .Values.persistence.storageClass }}
  resources:
    requests:
      storage: {{ .Values.persistence.size }}
{{- end }}
{{- if .Values.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ template "shop.fullname" . }}
spec:
  podSelector:
    matchLabels:
{{ template "shop.selectorLabels" . }}
  ingress:
    - from:
        {{- range .Values.networkPolicy.allowNamespaces }}
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ . }}
        {{- end }}
{{- end }}
{{- range $i, $job := .Values.cronjobs }}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ printf "%s-%s" $.Release.Name $job.name }}
  labels:
{{ template "shop.labels" $ }}
spec:
  schedule: {{ printf "%q" $job.schedule }}
  concurrencyPolicy: {{ if eq (len $job.args) 3 }}Forbid{{ else }}Allow{{ end }}
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: {{ $job.name }}
              image: "{{ $.Values.image.repository }}:{{ $.Values.image.tag }}"
              args:
                {{- range $job.args }}
                - {{ printf "%q" . }}
                {{- end }}
              env:
                - name: JOB_INDEX
                  value: {{ printf "%q" (print $i) }}
{{- end }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ template "shop.serviceAccountName" . }}
  labels:
{{ template "shop.labels" . }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- range $k, $v := . }}
    {{ $k }}: {{ printf "%q" $v }}
    {{- end }}
  {{- end }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ template "shop.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
{{ template "shop.labels" . }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
{{ template "shop.selectorLabels" . }}
  template:
    metadata:
      {{- with .Values.podAnnotations }}
      annotations:
        {{- range $k, $v := . }}
        {{ $k }}: {{ printf "%q" $v }}
        {{- end }}
      {{- end }}
      labels:
{{ template "shop.selectorLabels" . }}
    spec:
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ .name }}
        {{- end }}
      {{- end }}
      serviceAccountName: {{ template "shop.serviceAccountName" . }}
      securityContext:
        fsGroup: {{ .Values.podSecurityContext.fsGroup }}
        runAsNonRoot: {{ .Values.podSecurityContext.runAsNonRoot }}
      containers:
        - name: {{ .Chart.Name }}
          securityContext:
            {{- range $k, $v := .Values.securityContext }}
            {{ $k }}: {{ $v }}
            {{- end }}
          image: "{{ .Values.image.repository }}:{{ or .Values.image.tag .Chart.AppVersion }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            {{- range .Values.service.ports }}
            - name: {{ .name }}
              containerPort: {{ .targetPort }}
              protocol: TCP
            {{- end }}
          env:
            {{- range $i, $e := .Values.env }}
            - name: {{ $e.name }}
              value: {{ printf "%q" $e.value }}
            {{- end }}
            {{- range $k, $v := .Values.config }}
            - name: {{ printf "CFG_%s" $k }}
              value: {{ printf "%q" $v }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: {{ .Values.probes.liveness.path }}
              port: http
            initialDelaySeconds: {{ .Values.probes.liveness.initialDelaySeconds }}
            periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
          readinessProbe:
            httpGet:
              path: {{ .Values.probes.readiness.path }}
              port: http
            initialDelaySeconds: {{ .Values.probes.readiness.initialDelaySeconds }}
            periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
          resources:
            limits:
              cpu: {{ .Values.resources.limits.cpu }}
              memory: {{ .Values.resources.limits.memory }}
            requests:
              cpu: {{ .Values.resources.requests.cpu }}
              memory: {{ .Values.resources.requests.memory }}
          {{- if .Values.persistence.enabled }}
          volumeMounts:
            - name: data
              mountPath: /data
          {{- end }}
        {{- range .Values.sidecars }}
{{ template "shop.container" . }}
        {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- range $k, $v := . }}
        {{ $k }}: {{ $v }}
        {{- end }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- range . }}
        - key: {{ .key }}
          operator: {{ .operator }}
          value: {{ .value }}
          effect: {{ .effect }}
        {{- end }}
      {{- end }}
