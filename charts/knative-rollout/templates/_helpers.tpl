{{/* Names */}}
{{- define "knative-rollout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "knative-rollout.fullname" -}}
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

{{- define "knative-rollout.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "knative-rollout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "knative-rollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "knative-rollout.labels" -}}
helm.sh/chart: {{ include "knative-rollout.chart" . }}
{{ include "knative-rollout.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: knative-rollout
{{- end -}}

{{- define "knative-rollout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "knative-rollout.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "knative-rollout.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the controller must elect a leader: asked for, or more than one replica. */}}
{{- define "knative-rollout.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) (gt (int .Values.sharding.shards) 1) -}}true{{- end -}}
{{- end -}}

{{/* Sharded: one StatefulSet pod per shard, each the home of the shard of its ordinal (rollout.kube.shards). */}}
{{- define "knative-rollout.sharded" -}}
{{- if gt (int .Values.sharding.shards) 1 -}}true{{- end -}}
{{- end -}}

{{/* Controller pods: one per shard when sharded, else .Values.replicas. */}}
{{- define "knative-rollout.replicas" -}}
{{- if include "knative-rollout.sharded" . -}}{{ int .Values.sharding.shards }}{{- else -}}{{ int .Values.replicas }}{{- end -}}
{{- end -}}

{{/* Every Lease name the controller uses: the one of leader election, or one per shard (rollout.kube.shards.lease_name). */}}
{{- define "knative-rollout.leaseNames" -}}
{{- if include "knative-rollout.sharded" . -}}
{{- $names := list -}}
{{- range $k := until (int .Values.sharding.shards) -}}
{{- $names = append $names (printf "%s-shard-%d" (include "knative-rollout.leaseName" $) $k) -}}
{{- end -}}
{{- $names | toJson -}}
{{- else -}}
{{- list (include "knative-rollout.leaseName" .) | toJson -}}
{{- end -}}
{{- end -}}

{{/* The Lease the controller elects its leader on (rollout.kube.leader.LeaseSettings.name; a test checks). */}}
{{- define "knative-rollout.leaseName" -}}knative-rollout-controller{{- end -}}

{{/* Transition reasons that end a rollout RolledBack or Failed (rollout/engine/transitions.py; a test checks). */}}
{{- define "knative-rollout.failureReasons" -}}
CandidateFailed|CandidateReadyDeadline|InconclusiveRollback|PreRolloutWebhookFailed|RegressionDetected|RollbackWebhook|RolloutDeadlineExceeded|StepWebhookFailed
{{- end -}}

{{/* Consistency checks the JSON schema cannot express. */}}
{{- define "knative-rollout.validate" -}}
{{- if and (eq .Values.rbac.scope "namespaced") (empty .Values.watchNamespaces) -}}
{{- fail "rbac.scope=namespaced needs watchNamespaces: the namespaces the controller may act in (e.g. --set watchNamespaces={team-a,team-b})" -}}
{{- end -}}
{{- if and (eq .Values.rbac.scope "cluster") (not (empty .Values.watchNamespaces)) -}}
{{- fail "watchNamespaces is set but rbac.scope=cluster would grant every namespace: set rbac.scope=namespaced to watch only those namespaces" -}}
{{- end -}}
{{- $pods := int (include "knative-rollout.replicas" .) -}}
{{- if and .Values.podDisruptionBudget.minAvailable (gt $pods 1) (ge (int .Values.podDisruptionBudget.minAvailable) $pods) -}}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below the controller's pods (%d), or no node could ever be drained" (int .Values.podDisruptionBudget.minAvailable) $pods) -}}
{{- end -}}
{{- if and (include "knative-rollout.sharded" .) (gt (int .Values.replicas) 1) (ne (int .Values.replicas) (int .Values.sharding.shards)) -}}
{{- fail (printf "sharding.shards=%d runs one pod per shard: leave replicas at 1 (it is %d)" (int .Values.sharding.shards) (int .Values.replicas)) -}}
{{- end -}}
{{- end -}}

{{/*
The API calls the controller makes in the namespaces it watches. Tests compare these rules with the calls
the controller code makes (tests/chart/test_rbac.py, test_rbac_recorded.py); keep them exact, no wildcard.
*/}}
{{- define "knative-rollout.watchRules" -}}
- apiGroups: ["serving.knative.dev"]
  resources: ["services", "routes"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["serving.knative.dev"]
  resources: ["revisions"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["serving.knative.dev"]
  resources: ["configurations"]
  verbs: ["get"]
- apiGroups: ["knrollout.dev"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: ["knrollout.dev"]
  resources: ["rolloutpolicies"]
  verbs: ["list", "watch"]
- apiGroups: ["knrollout.dev"]
  resources: ["rollouts/status", "rolloutpolicies/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if and .Values.rbac.readSecrets (not .Values.rbac.secretNamespaces) }}
{{ include "knative-rollout.secretRule" . }}
{{- end }}
{{- end -}}

{{/*
Secret `get`, limited to the named Secrets when rbac.secretNames lists them. Never list or watch.
*/}}
{{- define "knative-rollout.secretRule" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
  {{- with .Values.rbac.secretNames }}
  resourceNames: {{ toJson . }}
  {{- end }}
{{- end -}}

{{/*
Relabelings that give queue-proxy series the labels the knative-otel dialect groups by (rollout/analysis/
dialects.py: `kn_revision_name`, `k8s_namespace_name`), in prometheus-operator's spelling (style=operator)
or Prometheus' own (style=prometheus).
*/}}
{{- define "knative-rollout.queueProxyLabels" -}}
{{- $pairs := list (list "__meta_kubernetes_pod_label_serving_knative_dev_revision" "kn_revision_name") (list "__meta_kubernetes_namespace" "k8s_namespace_name") (list "__meta_kubernetes_pod_name" "pod") -}}
{{- range $pairs }}
{{- if eq $.style "operator" }}
- sourceLabels: [{{ index . 0 }}]
  targetLabel: {{ index . 1 }}
  action: replace
{{- else }}
- source_labels: [{{ index . 0 }}]
  target_label: {{ index . 1 }}
  action: replace
{{- end }}
{{- end }}
{{- end -}}

{{/*
http or https: how the metrics port serves (metrics.tls.secretName set: https).
*/}}
{{- define "knative-rollout.metricsScheme" -}}
{{- if .Values.metrics.tls.secretName }}https{{ else }}http{{ end }}
{{- end -}}

{{/*
The Secret holding the notifications config, when there is one: the user's, or the one the chart renders
from notifications.destinations. Empty: no notifications config.
*/}}
{{- define "knative-rollout.notificationsSecret" -}}
{{- if .Values.notifications.existingSecret -}}
{{- .Values.notifications.existingSecret -}}
{{- else if .Values.notifications.destinations -}}
{{- include "knative-rollout.fullname" . }}-notifications
{{- end -}}
{{- end }}
