"""Test helpers: a real influxd per session, Phalanx-style Git repositories, CLI runs."""
