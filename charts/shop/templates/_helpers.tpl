{{/*
Names, labels, images and the settings every template shares.
*/}}

{{/* The release-scoped prefix of the chart's own infrastructure (PostgreSQL, Mailpit, ...). */}}
{{- define "shop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object, but the instance (which the selector labels carry). */}}
{{- define "shop.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: {{ .Chart.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels of an object that is no single component's. */}}
{{- define "shop.labels" -}}
{{ include "shop.commonLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "name" "order"). */}}
{{- define "shop.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* All labels of one component: (dict "root" $ "name" "order" "component" "service"). */}}
{{- define "shop.componentLabels" -}}
{{ include "shop.commonLabels" .root }}
{{ include "shop.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference from (dict "image" <repository/tag/digest> "registry" "" "tag" ""). */}}
{{- define "shop.image" -}}
{{- $repository := required "image.repository is required" .image.repository -}}
{{- if .registry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .registry) $repository -}}
{{- end -}}
{{- $tag := .image.tag | default .tag -}}
{{- $reference := $repository -}}
{{- if $tag -}}
{{- $reference = printf "%s:%s" $reference $tag -}}
{{- end -}}
{{- if .image.digest -}}
{{- $reference = printf "%s@%s" $reference .image.digest -}}
{{- end -}}
{{- $reference -}}
{{- end -}}

{{/* The image of a service: (dict "root" $ "service" <values of the service>). */}}
{{- define "shop.serviceImage" -}}
{{- $root := .root -}}
{{- include "shop.image" (dict "image" .service.image "registry" $root.Values.image.registry "tag" ($root.Values.image.tag | default $root.Chart.AppVersion)) -}}
{{- end -}}

{{/* The securityContext of every container of a service's pod (the user id as argument). */}}
{{- define "shop.serviceSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The ServiceAccount the services run as. */}}
{{- define "shop.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (printf "%s-services" (include "shop.fullname" .)) -}}
{{- end -}}

{{/* The Secret holding each service's DATABASE_URL under the service's name. */}}
{{- define "shop.databaseSecret" -}}
{{- if .Values.database.existingSecret -}}
{{- .Values.database.existingSecret -}}
{{- else if .Values.postgresql.enabled -}}
{{- printf "%s-database" (include "shop.fullname" .) -}}
{{- else -}}
{{- fail "the services need a database: set postgresql.enabled=true (development) or database.existingSecret (a Secret with one SQLAlchemy URL per service, keyed by service name)" -}}
{{- end -}}
{{- end -}}

{{/* The in-chart PostgreSQL's host name. */}}
{{- define "shop.postgresqlHost" -}}
{{- printf "%s-postgresql.%s.svc.cluster.local" (include "shop.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* The SMTP host of the notification service. */}}
{{- define "shop.smtpHost" -}}
{{- if .Values.smtp.host -}}
{{- .Values.smtp.host -}}
{{- else if .Values.mailpit.enabled -}}
{{- printf "%s-mailpit.%s.svc.cluster.local" (include "shop.fullname" .) .Release.Namespace -}}
{{- else -}}
{{- fail "the notification service needs an SMTP server: set smtp.host or mailpit.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/* A Destination pointing at one of the chart's Knative Services. */}}
{{- define "shop.ksvcRef" -}}
ref:
  apiVersion: serving.knative.dev/v1
  kind: Service
  name: {{ . }}
{{- end -}}

{{/* The SinkBinding that gives a service (by name) the broker as K_SINK. */}}
{{- define "shop.sinkBindingName" -}}
{{- printf "%s-broker" . -}}
{{- end -}}

{{/* The Broker's delivery spec (without deadLetterService, which becomes deadLetterSink). */}}
{{- define "shop.brokerDelivery" -}}
{{- $delivery := omit .Values.broker.delivery "deadLetterService" -}}
{{- $deadLetter := .Values.broker.delivery.deadLetterService -}}
{{- if $deadLetter -}}
{{- if not (hasKey .Values.services $deadLetter) -}}
{{- fail (printf "broker.delivery.deadLetterService %q is not one of the services (%s)" $deadLetter (keys .Values.services | sortAlpha | join ", ")) -}}
{{- end -}}
{{- $_ := set $delivery "deadLetterSink" (include "shop.ksvcRef" $deadLetter | fromYaml) -}}
{{- end -}}
{{- toYaml $delivery -}}
{{- end -}}

{{/*
The Triggers, as a YAML list of {name, subscriber, type, filter, delivery}: one per type a service
subscribes to (filtered on `type`, in the form the broker class applies), one without filter
for an all-events subscriber. `delivery` is set only when the service overrides the broker's.
*/}}
{{- define "shop.triggers" -}}
{{- $broker := .Values.broker -}}
{{- $brokerDelivery := include "shop.brokerDelivery" . | fromYaml -}}
{{- $triggers := list -}}
{{- range $name, $service := .Values.services -}}
{{- if and $service.allEvents $service.subscribes -}}
{{- fail (printf "services.%s: allEvents and subscribes exclude each other (an all-events Trigger already delivers every type)" $name) -}}
{{- end -}}
{{- range $type := $service.subscribes -}}
{{- if has $type ($service.produces | default list) -}}
{{- fail (printf "services.%s consumes %s, which it produces itself: its replies would loop back to it" $name $type) -}}
{{- end -}}
{{- $filter := dict "filters" (list (dict "exact" (dict "type" $type))) -}}
{{- if eq $broker.class "RabbitMQBroker" -}}
{{- $filter = dict "filter" (dict "attributes" (dict "type" $type)) -}}
{{- end -}}
{{- $override := merge (dict) (get ($service.triggerDelivery | default dict) $type | default dict) ($service.delivery | default dict) -}}
{{- $trigger := dict "name" (printf "%s-%s" $name ($type | replace "." "-")) "subscriber" $name "type" $type "filter" $filter "deliveryOrder" ($service.deliveryOrder | default "unordered") -}}
{{- if $override -}}
{{- $_ := set $trigger "delivery" (merge (dict) $override $brokerDelivery) -}}
{{- end -}}
{{- $triggers = append $triggers $trigger -}}
{{- end -}}
{{- if $service.allEvents -}}
{{- $trigger := dict "name" (printf "%s-all-events" $name) "subscriber" $name "deliveryOrder" ($service.deliveryOrder | default "unordered") -}}
{{- with $service.delivery -}}
{{- $_ := set $trigger "delivery" (merge (dict) . $brokerDelivery) -}}
{{- end -}}
{{- $triggers = append $triggers $trigger -}}
{{- end -}}
{{- end -}}
{{- toYaml $triggers -}}
{{- end -}}

{{/*
Sender identity (senderIdentity.enabled; wire/oidc/subjects.py holds the same names in code).
*/}}

{{/* A Knative Service's OIDC audience: (dict "root" $ "name" "order"). */}}
{{- define "shop.audience" -}}
{{- printf "%s.%s.svc.cluster.local" .name .root.Release.Namespace -}}
{{- end -}}

{{/*
A Destination, with the audience of the Knative Service it refers to when senderIdentity is on:
(dict "root" $ "destination" <Destination>). Knative sends a token only to a destination with an
audience, and a Knative Service publishes none, so the Trigger (or delivery) has to name it.
*/}}
{{- define "shop.destination" -}}
{{- $destination := deepCopy .destination -}}
{{- $ref := $destination.ref | default dict -}}
{{- if and .root.Values.senderIdentity.enabled (eq ($ref.kind | default "") "Service") -}}
{{- $_ := set $destination "audience" (include "shop.audience" (dict "root" .root "name" $ref.name)) -}}
{{- end -}}
{{- toYaml $destination -}}
{{- end -}}

{{/* A delivery spec whose dead-letter sink is a shop.destination: (dict "root" $ "delivery" <delivery>). */}}
{{- define "shop.delivery" -}}
{{- $delivery := deepCopy .delivery -}}
{{- with $delivery.deadLetterSink -}}
{{- $_ := set $delivery "deadLetterSink" (include "shop.destination" (dict "root" $.root "destination" .) | fromYaml) -}}
{{- end -}}
{{- toYaml $delivery -}}
{{- end -}}

{{/*
Who a Trigger's deliveries, replies and dead letters come from: the ServiceAccount Knative makes
for it, `<trigger>-oidc-eventing.knative.dev-trigger` (dict "root" $ "name" <trigger>). Knative
shortens one that would pass 63 characters with an md5 (kmeta.ChildName), which templates cannot
compute, so the chart refuses Trigger names over 29 characters.
*/}}
{{- define "shop.triggerSubject" -}}
{{- $suffix := "-oidc-eventing.knative.dev-trigger" -}}
{{- $longest := sub 63 (len $suffix) -}}
{{- if gt (len .name) (int $longest) -}}
{{- fail (printf "senderIdentity: Trigger %s is longer than %d characters, so Knative hashes the name of its OIDC ServiceAccount (kmeta.ChildName), which the chart cannot compute: shorten the service's name or the event type" .name (int $longest)) -}}
{{- end -}}
{{- printf "system:serviceaccount:%s:%s%s" .root.Release.Namespace (lower .name) $suffix -}}
{{- end -}}

{{/* The service a Trigger dead-letters to ("" for none): its own delivery's sink, else the Broker's. */}}
{{- define "shop.deadLetterServiceOf" -}}
{{- $delivery := .trigger.delivery | default (include "shop.brokerDelivery" .root | fromYaml) -}}
{{- with $delivery.deadLetterSink -}}
{{- with .ref -}}
{{- .name -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
OIDC_ALLOWED_SUBJECTS of a service, comma-separated: the Triggers that deliver to it and those
whose dead-letter sink it is (dict "root" $ "name" <service>). Dead letters come as the
Trigger too: the MTChannelBasedBroker routes them through its filter for that once OIDC is on
(Knative 1.13+, knative/eventing#7480) rather than the channel sending them as the Trigger's
Subscription, and the Kafka broker sends them as the Trigger.
*/}}
{{- define "shop.allowedSubjects" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $subjects := list -}}
{{- range $trigger := include "shop.triggers" $root | fromYamlArray -}}
{{- $sink := include "shop.deadLetterServiceOf" (dict "root" $root "trigger" $trigger) -}}
{{- if or (eq $trigger.subscriber $name) (eq $sink $name) -}}
{{- $subjects = append $subjects (include "shop.triggerSubject" (dict "root" $root "name" $trigger.name)) -}}
{{- end -}}
{{- end -}}
{{- join "," $subjects -}}
{{- end -}}

{{/*
The topology document of an observing service (TOPOLOGY): the Broker and its Triggers as JSON,
in the one shape wire/topology.schema.json defines (tests/chart validate it): Knative's field
names, destinations as Knative Destinations.
*/}}
{{- define "shop.topology" -}}
{{- $broker := dict "namespace" .Release.Namespace "name" .Values.broker.name -}}
{{- with (include "shop.brokerDelivery" . | fromYaml).deadLetterSink -}}
{{- $_ := set $broker "deadLetterSink" . -}}
{{- end -}}
{{- $triggers := list -}}
{{- range $trigger := include "shop.triggers" . | fromYamlArray -}}
{{- $subscriber := include "shop.ksvcRef" $trigger.subscriber | fromYaml -}}
{{- $node := merge (dict "namespace" $.Release.Namespace "name" $trigger.name "broker" $.Values.broker.name "subscriber" $subscriber) ($trigger.filter | default dict) -}}
{{- with $trigger.delivery -}}
{{- with .deadLetterSink -}}
{{- $_ := set $node "deadLetterSink" . -}}
{{- end -}}
{{- end -}}
{{- $triggers = append $triggers $node -}}
{{- end -}}
{{- dict "brokers" (list $broker) "triggers" $triggers | toJson -}}
{{- end -}}

{{/*
Traces (tracing; docs/deploy.md, "Traces").
*/}}

{{/* "true" when the release runs its own OpenTelemetry Collector (no tracing.endpoint), else "". */}}
{{- define "shop.tracingCollector" -}}
{{- $tracing := .Values.tracing -}}
{{- if and $tracing.enabled (not $tracing.endpoint) $tracing.collector.enabled -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the release runs Jaeger behind its collector, else "". */}}
{{- define "shop.tracingJaeger" -}}
{{- if and (include "shop.tracingCollector" .) .Values.tracing.jaeger.enabled -}}
true
{{- end -}}
{{- end -}}

{{/* The in-chart collector's and Jaeger's names (their Service, Deployment and ConfigMap). */}}
{{- define "shop.collectorName" -}}
{{- printf "%s-otel-collector" (include "shop.fullname" .) -}}
{{- end -}}

{{- define "shop.jaegerName" -}}
{{- printf "%s-jaeger" (include "shop.fullname" .) -}}
{{- end -}}

{{/*
The OTLP/HTTP base URL spans go to (OTEL_EXPORTER_OTLP_ENDPOINT; the exporters append
/v1/traces): tracing.endpoint, else the in-chart collector. Fails on values that would leave
spans nowhere to go.
*/}}
{{- define "shop.tracingEndpoint" -}}
{{- $tracing := .Values.tracing -}}
{{- if $tracing.endpoint -}}
{{- if $tracing.jaeger.enabled -}}
{{- fail "tracing.jaeger.enabled: Jaeger gets its spans from the in-chart collector, which tracing.endpoint replaces: unset tracing.endpoint, or send your collector's spans to a backend of your own" -}}
{{- end -}}
{{- trimSuffix "/" $tracing.endpoint -}}
{{- else if $tracing.collector.enabled -}}
{{- if not (or $tracing.jaeger.enabled $tracing.collector.exporterEndpoint) -}}
{{- fail "tracing: the collector needs somewhere to export to: set tracing.jaeger.enabled=true (development) or tracing.collector.exporterEndpoint (your backend's OTLP/HTTP URL)" -}}
{{- end -}}
{{- printf "http://%s.%s.svc.cluster.local:4318" (include "shop.collectorName" .) .Release.Namespace -}}
{{- else -}}
{{- fail "tracing.enabled needs a collector: set tracing.endpoint (one you run) or tracing.collector.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/* The OpenTelemetry Collector's configuration (config.yaml of its ConfigMap), as YAML. */}}
{{- define "shop.collectorConfig" -}}
{{- $collector := .Values.tracing.collector -}}
{{- $exporters := dict -}}
{{- if .Values.tracing.jaeger.enabled -}}
{{- $_ := set $exporters "otlp_http/jaeger" (dict "endpoint" (printf "http://%s.%s.svc.cluster.local:4318" (include "shop.jaegerName" .) .Release.Namespace)) -}}
{{- end -}}
{{- with $collector.exporterEndpoint -}}
{{- $_ := set $exporters "otlp_http/backend" (dict "endpoint" (trimSuffix "/" .)) -}}
{{- end -}}
{{- $otlp := dict "protocols" (dict "http" (dict "endpoint" "0.0.0.0:4318") "grpc" (dict "endpoint" "0.0.0.0:4317")) -}}
{{- $processors := dict
  "memory_limiter" (dict "check_interval" "1s" "limit_percentage" 80 "spike_limit_percentage" 25)
  "batch" (dict) -}}
{{- $pipeline := dict "receivers" (list "otlp") "processors" (list "memory_limiter" "batch") "exporters" (keys $exporters | sortAlpha) -}}
{{- $config := dict
  "extensions" (dict "health_check" (dict "endpoint" "0.0.0.0:13133"))
  "receivers" (dict "otlp" $otlp)
  "processors" $processors
  "exporters" $exporters
  "service" (dict "extensions" (list "health_check") "pipelines" (dict "traces" $pipeline)) -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Jaeger's configuration: OTLP in, traces in memory, the UI on 16686 (jaeger_query's default). */}}
{{- define "shop.jaegerConfig" -}}
{{- $config := dict
  "extensions" (dict
    "healthcheckv2" (dict "use_v2" true "http" (dict "endpoint" "0.0.0.0:13133"))
    "jaeger_storage" (dict "backends" (dict "memstore" (dict "memory" (dict "max_traces" (int .Values.tracing.jaeger.maxTraces)))))
    "jaeger_query" (dict "storage" (dict "traces" "memstore")))
  "receivers" (dict "otlp" (dict "protocols" (dict "http" (dict "endpoint" "0.0.0.0:4318") "grpc" (dict "endpoint" "0.0.0.0:4317"))))
  "processors" (dict "batch" (dict))
  "exporters" (dict "jaeger_storage_exporter" (dict "trace_storage" "memstore"))
  "service" (dict
    "extensions" (list "jaeger_storage" "jaeger_query" "healthcheckv2")
    "pipelines" (dict "traces" (dict "receivers" (list "otlp") "processors" (list "batch") "exporters" (list "jaeger_storage_exporter")))) -}}
{{- toYaml $config -}}
{{- end -}}

{{/*
Fails unless the cluster serves every API the chart renders; `helm template` needs
--api-versions for each (hack/render_manifests.py passes them).
*/}}
{{- define "shop.requireApis" -}}
{{- if .Values.capabilitiesCheck -}}
{{- $needed := list "serving.knative.dev/v1" "eventing.knative.dev/v1" "sources.knative.dev/v1" -}}
{{- if .Values.eventTypes.enabled -}}
{{- $needed = append $needed "eventing.knative.dev/v1beta3" -}}
{{- end -}}
{{- if or .Values.eventPolicy.enabled .Values.senderIdentity.enabled -}}
{{- $needed = append $needed "eventing.knative.dev/v1alpha1" -}}
{{- end -}}
{{- $missing := list -}}
{{- range $needed -}}
{{- if not ($.Capabilities.APIVersions.Has .) -}}
{{- $missing = append $missing . -}}
{{- end -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "\n\nThe cluster does not serve %s: install Knative Serving and Eventing first (hack/kind-up.sh does it on kind).\nTo render offline, pass each with --api-versions, e.g. helm template ... --api-versions %s\n" (join ", " $missing) (join " --api-versions " $needed)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
