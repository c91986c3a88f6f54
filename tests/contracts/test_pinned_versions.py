"""The versions the contract transcriptions were read at are the versions the program installs."""

from __future__ import annotations

import pytest
import yaml

from infra import versions
from infra.config import load_stack_file
from tests.conftest import SHARED
from tests.contracts import upstream


def test_transcriptions_match_the_pinned_charts() -> None:
    """infra/versions.py pins the charts whose app versions tests/contracts/upstream.py was read
    at (argo-helm: charts/argo-cd 10.1.1 = Argo CD v3.4.4, charts/argocd-image-updater 1.2.4 =
    Image Updater v1.2.2). A bump fails here until every transcription is re-read."""
    assert versions.ARGO_CD_CHART_VERSION == upstream.ARGO_CD_CHART_VERSION
    assert versions.IMAGE_UPDATER_CHART_VERSION == upstream.IMAGE_UPDATER_CHART_VERSION
    for stack in ("staging", "prod"):
        config = load_stack_file(stack)
        assert config.argocd.chart_version == upstream.ARGO_CD_CHART_VERSION, stack
        assert config.image_updater.chart_version == upstream.IMAGE_UPDATER_CHART_VERSION, stack


def test_the_charts_ship_the_transcribed_app_versions() -> None:
    """Chart.yaml appVersion of the pinned charts (../shared/upstream-charts, unmodified argo-helm
    at af0a9310bacbaa4636018dfe22c801a6d33a5c43)."""
    charts = SHARED / "upstream-charts"
    if not charts.is_dir():
        pytest.skip(f"{charts} is absent: the charts' appVersion is not checked here")
    for chart, version, app_version in (
        ("argo-cd", upstream.ARGO_CD_CHART_VERSION, upstream.ARGO_CD_APP_VERSION),
        ("argocd-image-updater", upstream.IMAGE_UPDATER_CHART_VERSION, upstream.IMAGE_UPDATER_APP_VERSION),
    ):
        meta = yaml.safe_load((charts / chart / "Chart.yaml").read_text())
        assert (meta["version"], meta["appVersion"]) == (version, app_version)
