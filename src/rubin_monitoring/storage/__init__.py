"""Adapters to the outside world: InfluxDB, the Git repository, Slack."""
