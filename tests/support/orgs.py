"""The organization each integration test works in (the ``org`` fixture)."""

from __future__ import annotations

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
