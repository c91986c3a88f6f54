"""The deploy command's only boundary: Argo CD Applications through the Kubernetes API.

Four calls, one per RBAC verb of the deploy roles (infra/manifests/rbac.py): ``list``
(find the ApplicationSet's Applications), ``get`` (read one), ``patch`` (request a sync by
setting ``operation``) and ``watch`` (wait for the controller to report progress). All of them
go through the official ``kubernetes`` client with a kubeconfig context, so the command needs
no argocd CLI and no Argo CD password, only the IAM role an EKS access entry maps to the
deployer (prod) or verifier (staging) group.

Every failure is turned into :class:`HubError`, which says which hub and which call failed and
whether retrying can help.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes import watch as kube_watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from infra import naming

GROUP = "argoproj.io"
VERSION = "v1alpha1"
PLURAL = "applications"
MERGE_PATCH = "application/merge-patch+json"


class KubeconfigError(Exception):
    """The kubeconfig file or context cannot be used (a usage error, exit code 2)."""


class HubError(Exception):
    """A call to a hub's Kubernetes API failed. ``status`` 0 means no HTTP answer at all."""

    def __init__(self, hub: str, verb: str, name: str | None, status: int, reason: str) -> None:
        self.hub = hub
        self.verb = verb
        self.name = name
        self.status = status
        self.reason = reason
        what = f"{verb} {PLURAL}/{name}" if name else f"{verb} {PLURAL}"
        answer = f"HTTP {status}" if status else "unreachable"
        super().__init__(f"{hub} hub: {what} failed ({answer}): {reason}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        """The watch's resourceVersion is too old: read the object again and watch from there."""
        return self.status == 410

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, throttled, or a server-side error."""
        return self.status in (0, 429) or self.status >= 500


def _reason(error: ApiException) -> str:
    # The API server's answer is a Status object; its message is what a person needs.
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(error.reason or "no reason given").strip()


def _as_dict(result: object) -> dict[str, Any]:
    # The custom-objects API answers with the decoded JSON object.
    return dict(result) if isinstance(result, dict) else {}


@dataclass
class Applications:
    """The Argo CD Applications in one hub's ``argocd`` namespace."""

    hub: str
    api_client: kube_client.ApiClient
    namespace: str = naming.ARGOCD_NAMESPACE
    request_timeout: float = 30.0

    def __post_init__(self) -> None:
        self._api = kube_client.CustomObjectsApi(self.api_client)

    def _fail(self, verb: str, name: str | None, error: Exception) -> HubError:
        if isinstance(error, ApiException):
            return HubError(self.hub, verb, name, int(error.status or 0), _reason(error))
        return HubError(self.hub, verb, name, 0, f"{type(error).__name__}: {error}")

    def list(self, label_selector: str) -> list[dict[str, Any]]:
        try:
            result = self._api.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                label_selector=label_selector,
                _request_timeout=self.request_timeout,
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            raise self._fail("list", None, error) from error
        items = _as_dict(result).get("items") or ()
        return [item for item in items if isinstance(item, dict)]

    def get(self, name: str) -> dict[str, Any]:
        try:
            result = self._api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=self.request_timeout
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            raise self._fail("get", name, error) from error
        return _as_dict(result)

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            result = self._api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                body,
                _content_type=MERGE_PATCH,
                _request_timeout=self.request_timeout,
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            raise self._fail("patch", name, error) from error
        return _as_dict(result)

    def watch(
        self, name: str, *, resource_version: str | None, timeout_seconds: int
    ) -> Iterator[dict[str, Any]]:
        """The Application's new states for up to ``timeout_seconds`` (ended by the server).

        A watch answers as soon as the controller writes a new status, where polling would see it
        only at its next tick, and costs one request per window instead of one per poll.
        """
        stream = kube_watch.Watch().stream(
            self._api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            # The server ends the watch after timeout_seconds; the client gives up a little later
            # so a silent proxy cannot hang the deploy.
            _request_timeout=(self.request_timeout, timeout_seconds + self.request_timeout),
        )
        try:
            for event in stream:
                kind = event.get("type")
                obj = event.get("raw_object")
                if kind == "DELETED":
                    raise HubError(self.hub, "watch", name, 404, "the Application was deleted")
                if kind in ("ADDED", "MODIFIED") and isinstance(obj, dict):
                    yield obj
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            raise self._fail("watch", name, error) from error

    def close(self) -> None:
        self.api_client.close()


def connect(hub: str, kubeconfig: str | None, context: str) -> Applications:
    """Applications of the hub that kubeconfig ``context`` points at.

    ``kubeconfig`` None means what kubectl uses: ``$KUBECONFIG`` or ``~/.kube/config``.
    """
    try:
        api_client = kube_config.new_client_from_config(
            config_file=kubeconfig, context=context, persist_config=False
        )
    except (ConfigException, OSError, ValueError, TypeError) as error:
        where = kubeconfig or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
        raise KubeconfigError(f"{hub} hub: cannot use context {context!r} of {where}: {error}") from error
    return Applications(hub=hub, api_client=api_client)
