"""Builds clients and services from settings: the only place that wires things together."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .config import Settings
from .models.inventory import Inventory
from .services.inventory import read_inventory
from .storage.gitrepo import checkout
from .storage.http import InfluxHTTP
from .storage.influxdb import InfluxDBStore


def load_inventory(settings: Settings) -> Inventory:
    with checkout(settings.phalanx_repo, settings.phalanx_ref) as root:
        return read_inventory(root)


@contextlib.contextmanager
def influxdb_store(settings: Settings) -> Iterator[InfluxDBStore]:
    url, token, org = settings.require_influxdb()
    with InfluxHTTP(
        url, token, timeout=settings.http_timeout, max_connections=settings.concurrency + 2
    ) as http:
        yield InfluxDBStore(http, org)
