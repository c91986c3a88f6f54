"""Transcriptions of the upstream rules the Argo CD side of the platform relies on.

One function per rule, each naming the upstream file and tag it transcribes. They are
deliberately small: only the branches the platform can reach are transcribed, and anything else
raises, so a test cannot pass on a case the transcription does not cover.

Pinned versions (``infra/versions.py``): Argo CD v3.4.4 (argo-cd chart 10.1.1), Argo CD Image
Updater v1.2.2 (argocd-image-updater chart 1.2.4).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ARGO_CD_APP_VERSION = "v3.4.4"
ARGO_CD_CHART_VERSION = "10.1.1"
IMAGE_UPDATER_APP_VERSION = "v1.2.2"
IMAGE_UPDATER_CHART_VERSION = "1.2.4"

HELM = "Helm"
KUSTOMIZE = "Kustomize"


# --- Argo CD: cluster credentials (argocd-k8s-auth) ----------------------------------------------


def argocd_k8s_auth_args(cluster_config: Mapping[str, Any]) -> list[str]:
    """The exec command Argo CD runs for a cluster Secret's ``config`` with ``awsAuthConfig``.

    argoproj/argo-cd v3.4.4, pkg/apis/application/v1alpha1/types.go, ``(*Cluster).RawRestConfig``:
    ``args := []string{"aws", "--cluster-name", ClusterName}``; ``--role-arn`` only
    ``if RoleARN != ""``; ``--profile`` only ``if Profile != ""``; command ``argocd-k8s-auth``, no
    ``Env`` (the plugin inherits the controller container's environment).
    """
    aws = cluster_config.get("awsAuthConfig")
    if aws is None:
        raise NotImplementedError("only awsAuthConfig is transcribed")
    args = ["argocd-k8s-auth", "aws", "--cluster-name", str(aws.get("clusterName", ""))]
    if aws.get("roleARN"):
        args += ["--role-arn", str(aws["roleARN"])]
    if aws.get("profile"):
        args += ["--profile", str(aws["profile"])]
    return args


@dataclass(frozen=True)
class SignedToken:
    """What ``argocd-k8s-auth aws`` did: the STS calls before presigning, and whose token it is."""

    sts_calls: tuple[str, ...]
    principal_role_arn: str


def argocd_k8s_auth_token(args: Sequence[str], default_chain_role_arn: str) -> SignedToken:
    """``argocd-k8s-auth aws`` in a pod whose default credential chain yields ``default_chain_role_arn``.

    argoproj/argo-cd v3.4.4, cmd/argocd-k8s-auth/commands/aws.go: ``loadAWSConfig`` calls
    ``config.LoadDefaultConfig`` (the default credential chain; with EKS Pod Identity the
    container credentials provider serves the pod's session, aws-sdk-go-v2 since
    release-2023-11-14, https://docs.aws.amazon.com/eks/latest/userguide/pod-id-minimum-sdk.html;
    Argo CD v3.4.4's go.mod pins aws-sdk-go-v2/config v1.32.11); ``getSignedRequestWithConfig``
    wraps the credentials in ``stscreds.NewAssumeRoleProvider`` only ``if roleARN != ""``, then
    presigns ``GetCallerIdentity``: the token authenticates whoever signed it.
    """
    if "--profile" in args:
        raise NotImplementedError("profiles are not transcribed")
    if "--role-arn" in args:
        role = args[args.index("--role-arn") + 1]
        return SignedToken(("sts:AssumeRole",), role)
    return SignedToken((), default_chain_role_arn)


# EKS Pod Identity tags the role session (eks-cluster-name, kubernetes-namespace, ...) and marks
# those tags transitive, so any AssumeRole made *from* such a session passes them on and needs
# sts:TagSession on top of sts:AssumeRole, in the caller's policy and the target's trust:
# https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html
CHAINED_ASSUME_ROLE_FROM_POD_IDENTITY = frozenset({"sts:AssumeRole", "sts:TagSession"})
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"


# --- Argo CD: status.sourceType ------------------------------------------------------------------


def argocd_status_source_type(source: Mapping[str, Any], render_succeeded: bool) -> str:
    """``status.sourceType`` the application controller writes after a comparison.

    argoproj/argo-cd v3.4.4: reposerver/repository/repository.go ``GenerateManifests`` returns
    ``SourceType: string(appSourceType)`` with the manifests, whatever their number (an explicit
    ``spec.source.helm`` makes it Helm, ``ApplicationSource.ExplicitType``); controller/state.go
    ``CompareAppState`` copies ``manifestInfo.SourceType`` into the comparison result only from
    the manifest responses, which a failed ``GetRepoObjs`` does not return; and
    controller/appcontroller.go sets ``app.Status.SourceType = compareResult.appSourceType``, so
    a failed render leaves (or makes) it empty.
    """
    if not render_succeeded:
        return ""
    if source.get("helm") is not None:
        return HELM
    raise NotImplementedError("only explicit Helm sources are transcribed")


ARGOCD_WRITE_BACK_TARGET_PREFIX = ".argocd-source-"  # common.DefaultTargetFilePrefix


def image_updater_source_type(app: Mapping[str, Any], write_back_target: str) -> str:
    """The source type Image Updater uses to decide whether it can update an Application.

    argoproj-labs/argocd-image-updater v1.2.2, pkg/argocd/argocd.go ``getApplicationSourceType``:
    a write-back target ending in ``.yaml``/``.yml`` whose base name does not start with
    ``.argocd-source-`` means Helm (git write-back to a Helm values file); otherwise, for a
    single-source Application, ``app.Status.SourceType``. With write-back ``argocd`` the target
    is the default ``.argocd-source-<app>.yaml`` (``newWBCFromSettings``/``parseDefaultTarget``),
    so only the status counts.
    """
    if app.get("spec", {}).get("sources"):
        raise NotImplementedError("multi-source Applications are not transcribed")
    base = write_back_target.rsplit("/", 1)[-1]
    if write_back_target.endswith((".yaml", ".yml")) and not base.startswith(ARGOCD_WRITE_BACK_TARGET_PREFIX):
        return HELM
    return str(app.get("status", {}).get("sourceType") or "")


def image_updater_processes(app: Mapping[str, Any], write_back_target: str) -> bool:
    """pkg/argocd/argocd.go v1.2.2 ``processApplicationForUpdate``: an Application whose type is
    neither Helm nor Kustomize is skipped ("not of supported source type") before any image,
    ``forceUpdate`` included, is looked at."""
    return image_updater_source_type(app, write_back_target) in (HELM, KUSTOMIZE)


def image_updater_considers_image(status_images: Iterable[str], repository: str, force_update: bool) -> bool:
    """pkg/argocd/argocd.go v1.2.2 ``GetImagesFromApplication`` and pkg/argocd/update.go
    ``UpdateApplication``: an image is updated only if it is live (in
    ``status.summary.images``) or ``forceUpdate`` adds it with no tag, which then updates on the
    first run ("dummy tag ... will trigger an update")."""
    live = any(image.rsplit(":", 1)[0] == repository for image in status_images)
    return live or force_update


# --- Kubernetes: CRD defaulting; Image Updater: effective settings ---------------------------------

KUBERNETES_APIEXTENSIONS_VERSION = "v0.36.3"


def crd_default(value: Any, schema: Mapping[str, Any] | None) -> Any:
    """``value`` defaulted by the API server from a CRD's structural ``openAPIV3Schema``.

    kubernetes/apiextensions-apiserver v0.36.3, pkg/apiserver/schema/defaulting/algorithm.go
    ``Default`` (Kubernetes doc "CustomResourceDefinition defaulting",
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#defaulting):
    for an object that is present, every property with a ``default`` that is missing (or a
    non-nullable null) gets a deep copy of it; then it recurses into the object's present
    properties (defaults included) and ``additionalProperties`` values, and into every item of a
    present array. A missing object is not created unless its own property has a default.
    Returns a defaulted deep copy; ``value`` is not changed.
    """
    out = copy.deepcopy(value)
    _crd_default_in_place(out, schema)
    return out


def _non_nullable_null(x: Any, schema: Mapping[str, Any] | None) -> bool:
    return x is None and schema is not None and not schema.get("nullable", False)


def _crd_default_in_place(x: Any, schema: Mapping[str, Any] | None) -> None:
    if schema is None:
        return
    if isinstance(x, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        for key, prop in properties.items():
            if "default" not in prop:
                continue
            if key not in x or _non_nullable_null(x[key], prop):
                x[key] = copy.deepcopy(prop["default"])
        extra = schema.get("additionalProperties")
        for key in list(x):
            if key in properties:
                _crd_default_in_place(x[key], properties[key])
            elif isinstance(extra, Mapping):
                if _non_nullable_null(x[key], extra) and "default" in extra:
                    x[key] = copy.deepcopy(extra["default"])
                _crd_default_in_place(x[key], extra)
    elif isinstance(x, list):
        items = schema.get("items")
        for i, item in enumerate(x):
            if isinstance(items, Mapping) and _non_nullable_null(item, items) and "default" in items:
                x[i] = copy.deepcopy(items["default"])
            _crd_default_in_place(x[i], items if isinstance(items, Mapping) else None)


COMMON_UPDATE_SETTINGS = (
    "updateStrategy",
    "allowTags",
    "ignoreTags",
    "pullSecret",
    "forceUpdate",
    "platforms",
)


def merge_common_update_settings(*levels: Mapping[str, Any] | None) -> dict[str, Any]:
    """argoproj-labs/argocd-image-updater v1.2.2, pkg/argocd/argocd.go ``mergeCommonUpdateSettings``:
    later levels take precedence field by field; a nil level, and a nil field within a level,
    change nothing."""
    merged: dict[str, Any] = {}
    for level in levels:
        if level is None:
            continue
        for field in COMMON_UPDATE_SETTINGS:
            if level.get(field) is not None:
                merged[field] = level[field]
    return merged


def merge_write_back_config(
    spec_level: Mapping[str, Any] | None, ref_level: Mapping[str, Any] | None
) -> dict[str, Any]:
    """argoproj-labs/argocd-image-updater v1.2.2, pkg/argocd/argocd.go ``mergeWBCSettings``: a copy
    of the spec level; the ref's ``method`` and each of its gitConfig fields, where set, win."""
    merged = copy.deepcopy(dict(spec_level or {}))
    if ref_level is None:
        return merged
    if ref_level.get("method") is not None:
        merged["method"] = ref_level["method"]
    if ref_level.get("gitConfig") is not None:
        git = merged.setdefault("gitConfig", {})
        for field in ("repository", "branch", "writeBackTarget", "pullRequest"):
            if ref_level["gitConfig"].get(field) is not None:
                git[field] = copy.deepcopy(ref_level["gitConfig"][field])
    return merged


@dataclass(frozen=True)
class EffectiveImageSettings:
    """What Image Updater uses for one image of one applicationRef."""

    name_pattern: str
    alias: str
    settings: Mapping[str, Any]
    write_back: Mapping[str, Any]


def image_updater_effective_settings(stored_cr: Mapping[str, Any]) -> list[EffectiveImageSettings]:
    """The settings per image of an ImageUpdater CR as stored (i.e. after defaulting).

    argoproj-labs/argocd-image-updater v1.2.2, pkg/argocd/argocd.go: for a ref without
    ``useAnnotations`` (``FilterApplicationsForUpdate``),
    ``mergeCommonUpdateSettings(spec.commonUpdateSettings, applicationRef.commonUpdateSettings)``
    and ``mergeWBCSettings(spec.writeBackConfig, applicationRef.writeBackConfig)``; then per image
    (``parseImageList``) ``mergeCommonUpdateSettings(thatResult, image.commonUpdateSettings)``.
    """
    spec = stored_cr["spec"]
    out = []
    for ref in spec["applicationRefs"]:
        if ref.get("useAnnotations"):
            raise NotImplementedError("settings read from Application annotations are not transcribed")
        ref_settings = merge_common_update_settings(
            spec.get("commonUpdateSettings"), ref.get("commonUpdateSettings")
        )
        write_back = merge_write_back_config(spec.get("writeBackConfig"), ref.get("writeBackConfig"))
        for image in ref.get("images") or []:
            out.append(
                EffectiveImageSettings(
                    name_pattern=ref["namePattern"],
                    alias=image["alias"],
                    settings=merge_common_update_settings(ref_settings, image.get("commonUpdateSettings")),
                    write_back=write_back,
                )
            )
    return out


# --- Argo CD: syncing ----------------------------------------------------------------------------

# The resource API a manifest's apiVersion/kind resolves to, as the cluster's discovery serves it.
Served = frozenset[tuple[str, str]]


def sync_tasks_valid(targets: Iterable[Mapping[str, Any]], served: Served) -> bool:
    """argoproj/argo-cd v3.4.4, gitops-engine/pkg/sync/sync_context.go: ``Sync`` first calls
    ``getSyncTasks``, which looks up every task's API resource
    (``kubeutil.ServerResourceForGroupVersionKind``); a NotFound fails the task unless
    SkipDryRunOnMissingResource is set or the CRD is part of the same sync, and then the whole
    operation fails ("one or more synchronization tasks are not valid") before any task, prune
    included, has run."""
    return all((str(t["apiVersion"]), str(t["kind"])) in served for t in targets)


@dataclass(frozen=True)
class SyncResult:
    phase: str  # Succeeded | Failed | Running (waiting for pruning confirmation)
    pruned: tuple[str, ...]
    sync_status: str  # Synced | OutOfSync, right after the operation


def _key(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


SYNC_OPTIONS_ANNOTATION = "argocd.argoproj.io/sync-options"


def _prune_option(obj: Mapping[str, Any], default: str | None) -> str | None:
    """gitops-engine sync_context.go ``objRequiresPruneConfirmation``/``isPruningDisabled``: the
    object's ``Prune=`` sync-options annotation, else the operation's (``WithDefaultPruneOption``,
    controller/sync.go: ``syncOp.SyncOptions.GetOptionValue("Prune")``)."""
    annotation = str((obj.get("metadata", {}).get("annotations") or {}).get(SYNC_OPTIONS_ANNOTATION, ""))
    for option in annotation.split(","):
        if option.strip().startswith("Prune="):
            return option.strip().split("=", 1)[1]
    return default


def sync(
    targets: Sequence[Mapping[str, Any]],
    live: Sequence[Mapping[str, Any]],
    *,
    prune: bool,
    served: Served,
    resources: Iterable[str] | None = None,
    sync_options: Sequence[str] = (),
    prune_confirmed: bool = False,
) -> SyncResult:
    """One sync operation of an Application, as far as pruning goes.

    argo-cd v3.4.4 controller/sync.go passes ``WithResourcesFilter``: with ``operation.sync.resources``
    set (a sync of *selected* resources: the UI's per-resource sync, ``argocd app sync
    --resource``) only those become tasks. gitops-engine sync_context.go ``getSyncTasks`` skips
    every other resource *before* the API lookup, so an unselected guard fails nothing; then
    invalid tasks fail the operation (see :func:`sync_tasks_valid`); live resources absent from
    the targets become prune tasks, which wait for ``argocd.argoproj.io/deletion-approved`` when
    their Prune option is ``confirm`` (``objRequiresPruneConfirmation``, ``pruneConfirmed``),
    are kept when it is ``false`` (``isPruningDisabled``), and are otherwise deleted by
    ``pruneObject`` only when the operation's ``prune`` is true ("ignored (requires pruning)").
    docs/user-guide/sync-options.md: "The app will be out of sync if Argo CD expects a resource
    to be pruned." ``resources``: the selected ``Kind/name`` keys, None for the whole app.
    """
    selected = None if resources is None else set(resources)

    def chosen(obj: Mapping[str, Any]) -> bool:
        return selected is None or _key(obj) in selected

    chosen_targets = [t for t in targets if chosen(t)]
    if not sync_tasks_valid(chosen_targets, served):
        return SyncResult("Failed", (), "OutOfSync")
    default = next((o.split("=", 1)[1] for o in sync_options if o.startswith("Prune=")), None)
    wanted = {_key(t) for t in targets}
    extra = [obj for obj in live if _key(obj) not in wanted and chosen(obj)]
    if not prune_confirmed and any(_prune_option(obj, default) == "confirm" for obj in extra):
        return SyncResult("Running", (), "OutOfSync")
    pruned = tuple(sorted(_key(o) for o in extra if prune and _prune_option(o, default) != "false"))
    left = {_key(o) for o in live if _key(o) not in wanted} - set(pruned)
    return SyncResult("Succeeded", pruned, "OutOfSync" if left else "Synced")


def api_server_sync_operation(
    application: Mapping[str, Any],
    *,
    prune: bool,
    resources: Iterable[str] | None,
    sync_options: Sequence[str] | None,
) -> dict[str, Any]:
    """The operation the API server writes for a sync request (UI, ``argocd app sync``, also in
    ``--core`` mode, where the CLI runs the same server code with the caller's kubeconfig).

    argo-cd v3.4.4 server/application/application.go ``Sync``: ``syncOptions`` are the
    Application's ``spec.syncPolicy.syncOptions`` unless the request carries its own
    (``if syncReq.SyncOptions != nil { syncOptions = syncReq.SyncOptions.Items }``, the CLI's
    ``--sync-option``), and ``resources`` are the request's selection.
    """
    own = list((application.get("spec", {}).get("syncPolicy") or {}).get("syncOptions") or [])
    sync: dict[str, Any] = {
        "prune": prune,
        "syncOptions": list(sync_options) if sync_options is not None else own,
    }
    if resources is not None:
        sync["resources"] = sorted(resources)
    return {**application, "operation": {"sync": sync}}


def auto_sync_skips_wipe_out(prune: bool, allow_empty: bool, requires_pruning: Sequence[bool]) -> bool:
    """argo-cd v3.4.4 controller/appcontroller.go ``autoSync``: with automated prune and
    ``allowEmpty`` false, when every resource requires pruning the attempt is skipped ("auto-sync
    will wipe out all resources")."""
    return prune and not allow_empty and all(requires_pruning)


def operation_sync_options(application: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The sync options and prune flag the controller uses for the Application's ``operation``.

    argo-cd v3.4.4 controller/sync.go ``SyncAppState`` reads only ``operation.sync.syncOptions``
    (``syncOp.SyncOptions.HasOption(...)``: CreateNamespace, ServerSideApply, PruneLast, ...) and
    ``operation.sync.prune``. The application's ``spec.syncPolicy.syncOptions`` are copied into
    the operation by the API server's Sync (server/application/application.go) and by auto-sync
    (controller/appcontroller.go), not by the controller: an ``operation`` written through the
    Kubernetes API (docs/user-guide/sync-kubectl.md) gets exactly what it carries.
    """
    sync_op = application.get("operation", {}).get("sync", {})
    return list(sync_op.get("syncOptions") or []), bool(sync_op.get("prune", False))


def argocd_sources_synced(app: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the application controller renders and applies when it starts ``app``'s operation.

    argoproj/argo-cd v3.4.4, controller/sync.go: ``SyncAppState`` creates the sync result once,
    at the start (``if state.SyncResult == nil``), with ``newSyncOperationResult``: if
    ``len(op.Sources) > 0 || op.Source != nil`` it takes the operation's ``Source``/``Sources``,
    otherwise ``app.Spec.Sources`` and ``app.Spec.GetSource()`` as the Application is then; with no
    ``Sources`` (single source) it compares and syncs ``[SyncResult.Source]``.
    """
    op = app["operation"]["sync"]
    if op.get("sources") or op.get("source") is not None:
        source, sources = op.get("source") or {}, list(op.get("sources") or [])
    else:
        source, sources = app["spec"].get("source") or {}, list(app["spec"].get("sources") or [])
    return copy.deepcopy(sources if sources else [source])


# --- ApplicationSet controller: updating an Application ------------------------------------------


def create_merge_patch(original: Any, modified: Any) -> Any:
    """RFC 7386 merge patch from ``original`` to ``modified`` (controller-runtime
    ``client.MergeFrom``): maps are diffed key by key, a removed key becomes null, and any other
    changed value, a list included, is replaced whole."""
    if isinstance(original, dict) and isinstance(modified, dict):
        patch: dict[str, Any] = {}
        for key in original.keys() - modified.keys():
            patch[key] = None
        for key, value in modified.items():
            if key not in original:
                patch[key] = copy.deepcopy(value)
            elif original[key] != value:
                sub = create_merge_patch(original[key], value)
                if sub != {} or not isinstance(value, dict):
                    patch[key] = sub
        return patch
    return copy.deepcopy(modified)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 applied as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# --- Argo CD: the application's namespace (CreateNamespace, managedNamespaceMetadata) -------------

SSA_SYNC_OPTION_ANNOTATION = ("argocd.argoproj.io/sync-options", "ServerSideApply=true")


def argocd_sync_namespace(
    sync_options: Sequence[str], sync_policy: Mapping[str, Any] | None, namespace_exists: bool
) -> dict[str, Any] | None:
    """The Namespace object a sync applies for the Application's destination namespace, or None.

    argoproj/argo-cd v3.4.4 controller/sync.go: the namespace modifier is installed only ``if
    syncOp.SyncOptions.HasOption("CreateNamespace=true")``; controller/sync_namespace.go
    ``syncNamespace``: a namespace that exists is synced only when ``managedNamespaceMetadata`` is
    set, and then gets its labels and its annotations plus ``argocd.argoproj.io/sync-options:
    ServerSideApply=true`` ("relies on SSA in order to avoid overriding existing labels and
    annotations"); a new one is created either way. gitops-engine/pkg/sync/sync_context.go: the
    task is in the PreSync phase, before the application's own objects.
    """
    if "CreateNamespace=true" not in sync_options:
        return None
    managed = (sync_policy or {}).get("managedNamespaceMetadata")
    if managed is None and namespace_exists:
        return None
    metadata: dict[str, Any] = {}
    if managed is not None:
        metadata["labels"] = dict(managed.get("labels") or {})
        annotations = dict(managed.get("annotations") or {})
        annotations[SSA_SYNC_OPTION_ANNOTATION[0]] = SSA_SYNC_OPTION_ANNOTATION[1]
        metadata["annotations"] = annotations
    return {"kind": "Namespace", "phase": "PreSync", "metadata": metadata}
