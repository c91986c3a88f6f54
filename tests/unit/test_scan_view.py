"""The scanner's view of a chart that renders Argo Rollouts: their pod templates are judged as
the Deployments they replace (infra.scan.pod_template_view)."""

from __future__ import annotations

from infra import scan


def _rollout(name: str) -> dict[str, object]:
    return {
        "apiVersion": scan.ROLLOUT_API,
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 10}]}},
        },
    }


def test_a_rollout_with_its_own_template_is_also_scanned_as_a_deployment() -> None:
    rollout = _rollout("shop-web")
    view = scan.pod_template_view(
        [rollout, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}]
    )
    deployments = [d for d in view if d["kind"] == "Deployment"]
    assert len(deployments) == 1
    (deployment,) = deployments
    assert deployment["apiVersion"] == "apps/v1"
    assert deployment["metadata"] == rollout["metadata"]
    assert deployment["spec"]["template"] == rollout["spec"]["template"]  # type: ignore[index]
    assert "strategy" not in deployment["spec"]
    # Nothing of the render is dropped or changed.
    assert [d for d in view if d["kind"] != "Deployment"] == [
        rollout,
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}},
    ]


def test_a_rollout_referring_to_a_workload_adds_nothing() -> None:
    rollout = _rollout("shop-web")
    rollout["spec"] = {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-web"}}
    assert scan.pod_template_view([rollout]) == [rollout]
