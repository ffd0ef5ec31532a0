"""Keep a central InfluxDB v2 in step with a Phalanx-style Git configuration repository."""

__version__ = "0.1.0"
