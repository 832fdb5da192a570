{{/* Chart name. */}}
{{- define "rune.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the API Deployment and Service: rune-api for release `rune`. */}}
{{- define "rune.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-api" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "rune.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "rune.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rune
{{- end }}

{{- define "rune.labels" -}}
{{ include "rune.commonLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{- define "rune.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rune.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end }}

{{- define "rune.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rune.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is pinned. */}}
{{- define "rune.image" -}}
{{- if .Values.image.digest }}
{{- if not (hasPrefix "sha256:" .Values.image.digest) }}
{{- fail (printf "image.digest must look like sha256:<64 hex>, got %q" .Values.image.digest) }}
{{- end }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "rune.postgres" -}}
{{- eq .Values.database.type "postgres" }}
{{- end }}

{{- define "rune.dbSecretName" -}}
{{- default (printf "%s-database" (include "rune.fullname" .)) .Values.database.postgres.existingSecret }}
{{- end }}

{{- define "rune.tokenSecretName" -}}
{{- default (printf "%s-tokens" (include "rune.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "rune.authSecretEnabled" -}}
{{- if or .Values.auth.existingSecret .Values.auth.tokens (and .Values.auth.generateToken (not .Values.auth.allowUnauthenticated)) }}true{{ end }}
{{- end }}

{{- define "rune.claimName" -}}
{{- default (printf "%s-data" (include "rune.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* Fails the render on combinations that cannot work. */}}
{{- define "rune.validate" -}}
{{- if not (has .Values.database.type (list "sqlite" "postgres")) }}
{{- fail (printf "database.type must be sqlite or postgres, got %q" .Values.database.type) }}
{{- end }}
{{- if eq .Values.database.type "sqlite" }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail (printf "replicaCount=%d needs database.type=postgres: SQLite allows one writer, so one API replica (set replicaCount=1, or use PostgreSQL)" (int .Values.replicaCount)) }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- fail "autoscaling.enabled=true needs database.type=postgres: SQLite allows one API replica" }}
{{- end }}
{{- else }}
{{- if and (not .Values.database.postgres.existingSecret) (not .Values.database.postgres.url) }}
{{- fail "database.type=postgres needs database.postgres.existingSecret (a Secret with key RUNE_DATABASE_URL) or database.postgres.url" }}
{{- end }}
{{- if and .Values.backupHook.enabled (not .Values.backupHook.existingClaim) }}
{{- fail "backupHook with database.type=postgres needs backupHook.existingClaim (a PVC for the backups), or backupHook.enabled=false" }}
{{- end }}
{{- end }}
{{- if and .Values.auth.allowUnauthenticated (or .Values.auth.existingSecret .Values.auth.tokens) }}
{{- fail "auth.allowUnauthenticated=true conflicts with auth.existingSecret/auth.tokens: choose one" }}
{{- end }}
{{- end }}

{{/* Environment shared by the API container and the backup hook. */}}
{{- define "rune.dbEnv" -}}
- name: RUNE_HOME
  value: /data
{{- if eq .Values.database.type "sqlite" }}
- name: RUNE_DATABASE_URL
  value: sqlite:///data/jobs.db
{{- else }}
- name: RUNE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "rune.dbSecretName" . }}
      key: {{ .Values.database.postgres.existingSecretKey }}
{{- end }}
{{- end }}

{{- define "rune.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "rune.securityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end }}
