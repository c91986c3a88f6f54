"""The vpc-cni EKS add-on's configuration values (issue 17: NetworkPolicies enforced).

The program passes ``infra.addons.vpc_cni_configuration()`` as the add-on's
``configurationValues`` on every cluster (tests/stack/test_addons_stack.py checks the plan). EKS
validates them against the add-on version's schema and the chart's templates turn them into the
network policy agent's flag; the keys and types transcribed in
``tests/contracts/addon_rules.py`` ``VPC_CNI_CONFIGURATION`` (EKS user guide
eks-networking-add-ons.adoc; aws/amazon-vpc-cni-k8s charts/aws-vpc-cni v1.14.1..v1.23.0).
"""

from __future__ import annotations

import json

from infra import addons, versions
from tests.contracts import addon_rules as rules


def test_every_key_the_program_passes_is_in_the_add_ons_configuration() -> None:
    """Each key of the configuration values is one the sources name, with their JSON type and
    value (``"true"``, a string, as the user guide and the chart's values.yaml have it)."""
    values = json.loads(json.dumps(addons.vpc_cni_configuration()))
    assert rules.vpc_cni_configuration_problems(values) == []
    # The rule bites: a JSON boolean, a misspelt key.
    assert rules.vpc_cni_configuration_problems({"enableNetworkPolicy": True})
    assert rules.vpc_cni_configuration_problems({"enableNetworkPolicies": "true"})


def test_the_configuration_turns_the_network_policy_agent_on() -> None:
    """charts/aws-vpc-cni templates/daemonset.yaml: ``--enable-network-policy`` takes
    ``enableNetworkPolicy``, whose default is ``"false"``: without the key nothing enforces the
    platform's NetworkPolicies."""
    assert rules.vpc_cni_enforces_network_policies(addons.vpc_cni_configuration())
    assert not rules.vpc_cni_enforces_network_policies({})


def test_the_add_on_versions_eks_may_install_have_the_key() -> None:
    """The key needs add-on v1.14.0-eksbuild.3 or later (EKS user guide). vpc-cni is not pinned
    (``infra/versions.py`` EKS_ADDONS: EKS installs the version it lists for the cluster's
    Kubernetes version); every supported Kubernetes version is far newer than the add-on's
    v1.14 (Kubernetes 1.27-1.28 era), and every chart release read up to v1.23.0 keeps the key.
    A version pinned here must be v1.14.0-eksbuild.3 or later."""
    minimum = (1, 14, 0, 3)
    for kubernetes, pinned in versions.EKS_ADDONS.items():
        version = pinned["vpc-cni"]
        if version is None:
            continue
        core, _, build = version.removeprefix("v").partition("-eksbuild.")
        assert (*map(int, core.split(".")), int(build or 0)) >= minimum, (kubernetes, version)
