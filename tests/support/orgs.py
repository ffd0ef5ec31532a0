"""The organization each integration test works in (the ``org`` fixture)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rubin_monitoring.testing.influxd import InfluxServer


@dataclass(frozen=True)
class OrgUnderTest:
    server: InfluxServer
    name: str
    id: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token(self) -> str:
        return self.server.token

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "INFLUXDB_URL": self.url,
            "INFLUXDB_TOKEN": self.token,
            "INFLUXDB_ORG": self.name,
            **extra,
        }


def new_org(influxdb: InfluxServer) -> OrgUnderTest:
    """A new organization of its own, for a module's fixture (the ``org`` fixture is one per
    test)."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    with influxdb.client() as client:
        response = client.post("/api/v2/orgs", json={"name": name})
        response.raise_for_status()
        return OrgUnderTest(influxdb, name, response.json()["id"])
