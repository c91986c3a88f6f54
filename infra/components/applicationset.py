"""The application's AppProject and ApplicationSet on the hub (issue 6).

:class:`ApplicationSet` declares the AppProject (one repository, the registered clusters'
application namespace) and the ApplicationSet that generates one Application per registered
cluster of the environment. Both manifests are pure functions in :mod:`infra.manifests.argocd`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.argocd import ArgoCdHub
from infra.config import ApplicationConfig, StackConfig
from infra.manifests import argocd as manifests


@dataclass(frozen=True)
class ApplicationSetArgs:
    """The hub's Argo CD, the application's settings and environment (the AppProject's), and the
    ApplicationSet manifest computed from the config up front (:meth:`from_config`)."""

    argocd: ArgoCdHub
    environment: str
    application: ApplicationConfig  # already typed and frozen by infra/config.py
    application_set: Mapping[str, Any]  # manifests.application_set(config)

    @classmethod
    def from_config(cls, config: StackConfig, argocd: ArgoCdHub) -> ApplicationSetArgs:
        return cls(
            argocd=argocd,
            environment=config.environment,
            application=config.application,
            application_set=manifests.application_set(config),
        )


class ApplicationSet(pulumi.ComponentResource):
    """The environment's Applications, one per region, generated from the cluster Secrets."""

    def __init__(
        self, name: str, args: ApplicationSetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:applicationset:ApplicationSet", name, None, opts)
        argocd, application, environment = args.argocd, args.application, args.environment
        # Both kinds' CRDs are installed by the argo-cd release.
        on_hub = pulumi.ResourceOptions(
            parent=self, provider=argocd.k8s_provider, depends_on=[argocd.release]
        )
        project: pulumi.Output[dict[str, Any]] = argocd.servers.apply(
            lambda servers: manifests.application_project(
                application.name, application.repo_url, application.namespace, environment, servers
            )
        )
        self.project = k8s.apiextensions.CustomResource(
            "app-project",
            api_version=manifests.ARGOPROJ_API,
            kind="AppProject",
            metadata=project.apply(lambda m: m["metadata"]),
            spec=project.apply(lambda m: m["spec"]),
            opts=on_hub,
        )
        default = manifests.default_app_project()
        self.default_project = k8s.apiextensions.CustomResource(
            "default-app-project",
            api_version=default["apiVersion"],
            kind=default["kind"],
            metadata=default["metadata"],
            spec=default["spec"],
            opts=on_hub,
        )
        manifest = args.application_set
        self.application_set_name: str = manifest["metadata"]["name"]
        self.application_set = k8s.apiextensions.CustomResource(
            "application-set",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=dict(manifest["metadata"]),
            spec=dict(manifest["spec"]),
            # An Application of an unknown project is refused: the project first.
            opts=pulumi.ResourceOptions.merge(on_hub, pulumi.ResourceOptions(depends_on=[self.project])),
        )
        self.register_outputs({"applicationSet": self.application_set_name})
