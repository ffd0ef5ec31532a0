"""host-config: the InfluxDB host's Telegraf configuration (pure), and its command."""

from __future__ import annotations

import tomllib

from support.cli import run_cli

from rubin_monitoring.services.host import host_config, host_config_toml


def test_influxd_metrics_and_every_real_disk_go_to_influxdb_() -> None:
    config = host_config(influxdb_url="https://influx.example:8086/", organization="rubin")
    (scrape,) = config["inputs"]["prometheus"]
    assert scrape == {
        "urls": ["https://influx.example:8086/metrics"],
        "metric_version": 2,
        "url_tag": "",
        "tagdrop": {"quantile": ["*"]},
    }
    (disk,) = config["inputs"]["disk"]
    assert "tmpfs" in disk["ignore_fs"] and "mount_points" not in disk
    (output,) = config["outputs"]["influxdb_v2"]
    assert output == {
        "urls": ["https://influx.example:8086/"],
        "token": "${INFLUX_TOKEN}",
        "organization": "rubin",
        "bucket": "influxdb_",
    }
    assert config["agent"] == {"interval": "60s", "flush_interval": "60s"}


def test_options_and_the_toml_round_trip() -> None:
    config = host_config(
        influxdb_url="https://i",
        organization="o",
        scrape_url="http://localhost:8086/metrics",
        interval="30s",
        mount_points=["/var/lib/influxdb2"],
        hostname="influxdb-0",
        tls_ca="/ca.pem",
    )
    assert config["inputs"]["disk"] == [{"mount_points": ["/var/lib/influxdb2"]}]
    assert config["agent"]["hostname"] == "influxdb-0"
    assert config["inputs"]["prometheus"][0]["urls"] == ["http://localhost:8086/metrics"]
    assert config["outputs"]["influxdb_v2"][0]["tls_ca"] == "/ca.pem"
    text = host_config_toml(config)
    assert text.startswith("# Telegraf on the InfluxDB host")
    assert tomllib.loads(text) == config


def test_the_command_needs_no_token_and_prints_none() -> None:
    env = {"INFLUXDB_URL": "https://influx.example", "INFLUXDB_ORG": "rubin"}
    run = run_cli(["host-config", "--hostname", "influxdb-0"], env)
    assert run.exit_code == 0, run.stderr
    assert tomllib.loads(run.stdout)["outputs"]["influxdb_v2"][0]["token"] == "${INFLUX_TOKEN}"
    missing = run_cli(["host-config"], {"INFLUXDB_ORG": "rubin"})
    assert missing.exit_code == 2
    assert "INFLUXDB_URL (--influxdb-url) is not set" in missing.stderr
