{{/*
Helpers of the shop chart. Every per-service helper takes the dict each template builds as
  $ctx := dict "root" $ "name" $name "svc" $svc
(root: the top-level context; name: a key of .Values.services; svc: that service's values),
because a helper has only one argument and needs all three.
*/}}

{{/* The chart name, used in the app.kubernetes.io/name label. */}}
{{- define "shop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name. Truncated to leave room for "-<service>" inside the 63
characters of a DNS label.
*/}}
{{- define "shop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 30 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 30 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 30 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The value of the helm.sh/chart label. */}}
{{- define "shop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of every object of one service: <fullname>-<service>. */}}
{{- define "shop.serviceFullname" -}}
{{- printf "%s-%s" (include "shop.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Whether a service is rendered: "true" or "". `enabled` is optional and defaults to true, so
an absent key must not read as false. No service is rendered before Image Updater has written
image.tag: the release is then only the guard of templates/image-tag-missing.yaml (see there).
*/}}
{{- define "shop.enabled" -}}
{{- if and (dig "enabled" true .svc) .root.Values.image.tag -}}true{{- end -}}
{{- end -}}

{{/*
The running version: the shared image tag, cut to a valid label value (at most 63
characters, ending in an alphanumeric).
*/}}
{{- define "shop.version" -}}
{{- .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | trimSuffix "." | trimSuffix "_" -}}
{{- end -}}

{{/*
Labels selecting one service's pods. Never change these on a live release: a Deployment's
selector is immutable.
*/}}
{{- define "shop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shop.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* Every label of one service's objects. */}}
{{- define "shop.labels" -}}
helm.sh/chart: {{ include "shop.chart" .root }}
{{ include "shop.selectorLabels" . }}
app.kubernetes.io/version: {{ include "shop.version" .root | quote }}
app.kubernetes.io/part-of: {{ include "shop.name" .root }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/*
The image of one service: <global.registry>/<image.prefix>/<service>:<image.tag>, plus
@<digest> when image.digest pins it. Fails rather than rendering an image no node can pull.
*/}}
{{- define "shop.image" -}}
{{- $registry := required "global.registry is empty: set it in values-<env>-<region>.yaml to the region's ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com)" .root.Values.global.registry -}}
{{- $tag := required "image.tag is empty: Argo CD Image Updater sets the Helm parameter image.tag; to render by hand pass --set image.tag=<YYYYMMDD.HHMMSS-sha>" .root.Values.image.tag -}}
{{- $ref := printf "%s/%s/%s:%s" $registry .root.Values.image.prefix .name $tag -}}
{{- with get .root.Values.image.digest .name -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/*
Checks the values cannot express in values.schema.json; included once, from deployment.yaml.
*/}}
{{- define "shop.validate" -}}
{{- $_ := required "global.region is empty: set it in values-<env>-<region>.yaml" .Values.global.region -}}
{{- $_ = required "global.environment is empty: set it in values-<env>.yaml" .Values.global.environment -}}
{{- with .Values.image.name -}}
{{- $expected := printf "%s/%s/" $.Values.global.registry $.Values.image.prefix -}}
{{- if not (hasPrefix $expected .) -}}
{{- fail (printf "image.name %s (written by Image Updater) is not in this region's registry %s" . $expected) -}}
{{- end -}}
{{- end -}}
{{- range $name, $_ := .Values.image.digest -}}
{{- if not (hasKey $.Values.services $name) -}}
{{- fail (printf "image.digest.%s: there is no service %s in services" $name $name) -}}
{{- end -}}
{{- end -}}
{{- range $name, $svc := .Values.services -}}
{{- $autoscaling := $svc.autoscaling | default dict -}}
{{- if and $autoscaling.enabled (gt (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas)) -}}
{{- fail (printf "services.%s.autoscaling: minReplicas (%d) is greater than maxReplicas (%d)" $name (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The container's environment: AWS_REGION and DEPLOY_ENVIRONMENT from global, then the
service's env (sorted by name). A name in the service's env replaces the chart's variable
rather than duplicating it, since duplicate names make the effective value depend on order.
*/}}
{{- define "shop.env" -}}
{{- $env := .svc.env | default dict -}}
{{- if not (hasKey $env "AWS_REGION") }}
- name: AWS_REGION
  value: {{ .root.Values.global.region | quote }}
{{- end }}
{{- if not (hasKey $env "DEPLOY_ENVIRONMENT") }}
- name: DEPLOY_ENVIRONMENT
  value: {{ .root.Values.global.environment | quote }}
{{- end }}
{{- range $key, $value := $env }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- range $key := .svc.secrets | default list }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "shop.serviceFullname" $ }}
      key: {{ $key }}
{{- end }}
{{- end -}}

{{/*
Whether a service's canary shifts traffic through the load balancer ("true" or ""): with rollouts
on, the service the ALB Ingresses front (ingress.service, templates/ingress.yaml) when they are
rendered (ingress.enabled). Every other service runs a replica-based canary.
*/}}
{{- define "shop.trafficRouted" -}}
{{- $in := .root.Values.ingress -}}
{{- if and .root.Values.rollouts.enabled $in.enabled (eq $in.service .name) -}}true{{- end -}}
{{- end -}}

{{/*
The ALB's name (the AWS Load Balancer Controller's load-balancer-name annotation): an internal
service's analysis finds the load balancer's metrics by it. Defaults to the release name, which
is unique per environment and region; at most 32 characters (ELBv2 CreateLoadBalancer Name).
*/}}
{{- define "shop.loadBalancerName" -}}
{{- .Values.rollouts.loadBalancerName | default .Release.Name | trunc 32 | trimSuffix "-" -}}
{{- end -}}

{{/*
How many Ingresses a traffic-routed Rollout lists in alb.ingresses: templates/ingress.yaml's
two, the public host's and the region host's (shop.canary lists them in that order). Each is a
separate target group set (AWS Load Balancer Controller v3.5.0
pkg/ingress/model_build_target_group.go names a target group per Ingress and Service port), so
the canary has one canary target group per Ingress and the analysis reads them all.
*/}}
{{- define "shop.albIngressCount" -}}2{{- end -}}

{{/* "<id>0, <id>1, ...": the ids of one metric's per-Ingress queries (analysistemplate.yaml). */}}
{{- define "shop.albQueryIds" -}}
{{- $ids := list -}}
{{- range $i := until (int .n) }}{{ $ids = append $ids (printf "%s%d" $.id $i) }}{{ end -}}
{{- join ", " $ids -}}
{{- end -}}

{{/*
The arguments of one service's analysis steps. Traffic-routed: per Ingress i of alb.ingresses,
load-balancer-<i> and target-group-<i> from status.albs[i] (argo-rollouts v1.9.0
rollout/trafficrouting/alb/alb.go VerifyWeight fills status.albs by the Ingresses' index;
status.alb is only the last one's), read through valueFrom.fieldRef (utils/analysis/factory.go
extractValueFromRollout walks indexes). Every Ingress counts: the public host gets the users'
requests, the region host Route 53's health checks (infra/traffic.py), which are the only
steady traffic of an environment nobody browses. Otherwise the load balancer's name.
*/}}
{{- define "shop.analysisArgs" -}}
{{- if include "shop.trafficRouted" . -}}
{{- range $i := until (int (include "shop.albIngressCount" .)) }}
- name: load-balancer-{{ $i }}
  valueFrom:
    fieldRef:
      fieldPath: status.albs[{{ $i }}].loadBalancer.fullName
- name: target-group-{{ $i }}
  valueFrom:
    fieldRef:
      fieldPath: status.albs[{{ $i }}].canaryTargetGroup.fullName
{{- end }}
{{- else }}
- name: load-balancer-name
  value: {{ include "shop.loadBalancerName" .root }}
{{- end }}
{{- end -}}

{{/*
The canary strategy of one service's Rollout (argo-rollouts v1.9.0 pkg/apis/rollouts/v1alpha1
types.go CanaryStrategy). Each entry of rollouts.steps is a setWeight, a pause that lets the
load balancer's one-minute CloudWatch datapoints arrive, then an analysis of the service's
AnalysisTemplate; a failed analysis aborts the Rollout, which sends all traffic back to the
stable ReplicaSet and scales the canary down (docs/features/analysis.md). After the last step
the Rollout promotes itself fully.
Traffic-routed (the ALB-fronted service): the weight is the share of the load balancer's
requests (ALB weighted target groups through the ping and pong Services, one of them the stable
and the other the canary, docs/features/traffic-management/alb.md "Zero-Downtime Updates with
Ping-Pong feature"; the validation requires rootService with pingPong), and the analysis reads the
canary target groups' own metrics, every Ingress's, by the names the controller records in
status.albs (the canary is whichever of ping and pong is canary: alb.go VerifyWeightPerIngress;
fieldRef args, docs/features/analysis.md; shop.analysisArgs). Otherwise: the weight is the share of replicas, and the analysis
reads the whole load balancer's metrics (every request it serves passes through this service's
callers).
*/}}
{{- define "shop.canary" -}}
{{- $routed := include "shop.trafficRouted" . -}}
{{- $full := include "shop.serviceFullname" . -}}
canary:
  {{- if $routed }}
  {{- /* Ping-Pong, not canaryService/stableService: templates/canary-services.yaml says why. */}}
  pingPong:
    pingService: {{ $full }}-ping
    pongService: {{ $full }}-pong
  trafficRouting:
    alb:
      {{- /* templates/ingress.yaml's two Ingresses (shop.albIngressCount), the public host's first; the analysis reads both */}}
      ingresses:
        - {{ $full }}
        - {{ $full }}-region
      rootService: {{ $full }}
      servicePort: {{ .svc.port }}
  {{- end }}
  maxSurge: 25%
  maxUnavailable: 0
  steps:
    {{- range $i, $step := .root.Values.rollouts.steps }}
    - setWeight: {{ $step.weight }}
    - pause:
        duration: {{ $step.pause }}
    - analysis:
        templates:
          - templateName: {{ $full }}-step-{{ add1 $i }}
        args:
          {{- include "shop.analysisArgs" $ | nindent 10 }}
    {{- end }}
{{- end -}}
