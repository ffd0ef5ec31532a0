"""The probe Telegraf configuration rendered from the inventory (pure)."""

from __future__ import annotations

import tomllib

from rubin_monitoring.models.inventory import Environment, Inventory
from rubin_monitoring.services.probes import certificate_source, probe_config, probe_config_toml

INVENTORY = Inventory(
    (
        Environment("idfdev", "data-dev.lsst.cloud", "values-idfdev.yaml", ("mobu",)),
        Environment("lab", "127.0.0.1:8443", "values-lab.yaml", ("mobu",)),
        Environment("nosite", None, "values-nosite.yaml", ("mobu",)),
    )
)


def test_every_environment_with_an_fqdn_is_probed_and_tagged_with_its_name() -> None:
    config = probe_config(INVENTORY, influxdb_url="http://influx:8086", organization="rubin")
    sites = [(p["urls"], p["tags"]) for p in config["inputs"]["http_response"]]
    assert sites == [
        (["https://data-dev.lsst.cloud/"], {"cluster": "idfdev"}),
        (["https://127.0.0.1:8443/"], {"cluster": "lab"}),
    ]
    certs = [p["sources"] for p in config["inputs"]["x509_cert"]]
    assert certs == [["https://data-dev.lsst.cloud:443"], ["https://127.0.0.1:8443"]]
    (output,) = config["outputs"]["influxdb_v2"]
    assert output == {
        "urls": ["http://influx:8086"],
        "token": "${INFLUX_TOKEN}",
        "organization": "rubin",
        "bucket": "probes_",
    }


def test_the_file_is_toml_that_reads_back_as_the_mapping() -> None:
    config = probe_config(INVENTORY, influxdb_url="http://i", organization="o", tls_ca="/ca.pem")
    text = probe_config_toml(config)
    assert text.startswith("# Telegraf probes")
    assert tomllib.loads(text) == config
    assert all(p["tls_ca"] == "/ca.pem" for p in config["inputs"]["x509_cert"])
    assert certificate_source("a.example") == "https://a.example:443"
