"""Every dashboard under dashboards/ is a valid InfluxDB template whose queries run."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from support.orgs import OrgUnderTest

from rubin_monitoring.testing.flux import create_bucket

pytestmark = pytest.mark.integration

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "dashboards").glob("*.yml"))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_applies_and_its_queries_run(org: OrgUnderTest, path: Path) -> None:
    headers = {"Authorization": f"Token {org.token}"}
    for bucket in ("multiapp_", "alerted_"):
        create_bucket(org, bucket)
    with httpx.Client(base_url=org.url, headers=headers, timeout=30) as client:
        document = yaml.safe_load(path.read_text())
        body = {
            "orgID": org.id,
            "dryRun": False,
            "template": {"contentType": "json", "contents": [document]},
        }
        response = client.post("/api/v2/templates/apply", json=body)
        assert response.status_code == 201, response.text
        assert not response.json().get("errors"), response.json()["errors"]
        dashboards = client.get("/api/v2/dashboards", params={"orgID": org.id}).json()
        assert len(dashboards["dashboards"]) == 1

        for chart in document["spec"]["charts"]:
            for query in chart["queries"]:
                flux = (
                    "v = {timeRangeStart: -1h, timeRangeStop: now(), windowPeriod: 1m}\n"
                    + query["query"]
                )
                result = client.post(
                    "/api/v2/query", params={"orgID": org.id}, json={"query": flux, "type": "flux"}
                )
                assert result.status_code == 200, (chart["name"], result.text)
