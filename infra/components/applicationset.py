"""The application's AppProject and ApplicationSet on the hub (issue 6).

:class:`ApplicationSet` declares the AppProject (one repository, the registered clusters'
application namespace) and the ApplicationSet that generates one Application per registered
cluster of the environment. Both manifests are pure functions in :mod:`infra.manifests.argocd`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.argocd import ArgoCdHub
from infra.config import StackConfig
from infra.manifests import argocd as manifests


@dataclass(frozen=True)
class ApplicationSetArgs:
    config: StackConfig
    argocd: ArgoCdHub


class ApplicationSet(pulumi.ComponentResource):
    """The environment's Applications, one per region, generated from the cluster Secrets."""

    def __init__(
        self, name: str, args: ApplicationSetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:applicationset:ApplicationSet", name, None, opts)
        config, argocd = args.config, args.argocd
        # Both kinds' CRDs are installed by the argo-cd release.
        on_hub = pulumi.ResourceOptions(
            parent=self, provider=argocd.k8s_provider, depends_on=[argocd.release]
        )
        project: pulumi.Output[dict[str, Any]] = argocd.servers.apply(
            lambda servers: manifests.app_project(config, servers)
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
        manifest = manifests.application_set(config)
        self.application_set_name: str = manifest["metadata"]["name"]
        self.application_set = k8s.apiextensions.CustomResource(
            "application-set",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            # An Application of an unknown project is refused: the project first.
            opts=pulumi.ResourceOptions.merge(on_hub, pulumi.ResourceOptions(depends_on=[self.project])),
        )
        self.register_outputs({"applicationSet": self.application_set_name})
