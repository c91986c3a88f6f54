"""Cluster add-ons through GitOps (issue 17): what the program bootstraps for them.

:class:`ClusterAddons` declares, on the hub, the add-ons' AppProject and one ApplicationSet per
enabled add-on (:mod:`infra.addons` builds both as pure data). The clusters' facts reach those
ApplicationSets through the cluster Secrets' labels and annotations, which
:class:`infra.components.argocd.ClusterRegistration` writes. Argo CD does the rest: nothing here
installs an add-on itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import addons
from infra.components.argocd import ArgoCdHub
from infra.config import StackConfig


@dataclass(frozen=True)
class ClusterAddonsArgs:
    config: StackConfig
    argocd: ArgoCdHub


class ClusterAddons(pulumi.ComponentResource):
    """The add-on ApplicationSets of one environment, on its hub."""

    def __init__(
        self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:addons:ClusterAddons", name, None, opts)
        config, argocd = args.config, args.argocd
        # The CRDs come with the argo-cd release; a cluster is selected only once its Secret
        # (and with it the hub's access to it) exists.
        registrations = [r.secret for r in argocd.registrations.values()]
        on_hub = pulumi.ResourceOptions(
            parent=self, provider=argocd.k8s_provider, depends_on=[argocd.release, *registrations]
        )
        self.application_set_names: list[str] = []
        self.project: k8s.apiextensions.CustomResource | None = None
        sets = addons.application_sets(config)
        if sets:
            project: pulumi.Output[dict[str, Any]] = argocd.servers.apply(
                lambda servers: addons.addons_project(config, servers)
            )
            self.project = k8s.apiextensions.CustomResource(
                "addons-project",
                api_version=addons.ARGOPROJ_API,
                kind="AppProject",
                metadata=project.apply(lambda m: m["metadata"]),
                spec=project.apply(lambda m: m["spec"]),
                opts=on_hub,
            )
            for manifest in sets:
                set_name = manifest["metadata"]["name"]
                k8s.apiextensions.CustomResource(
                    set_name,
                    api_version=manifest["apiVersion"],
                    kind=manifest["kind"],
                    metadata=manifest["metadata"],
                    spec=manifest["spec"],
                    opts=pulumi.ResourceOptions.merge(
                        on_hub, pulumi.ResourceOptions(depends_on=[self.project])
                    ),
                )
                self.application_set_names.append(set_name)
        self.summary = addons.plan_summary(config)
        self.register_outputs({"applicationSets": self.application_set_names, "clusters": self.summary})
