"""Run a real Telegraf (the custom build of ``scripts/provision-telegraf``) from tests.

Typical use::

    from support.telegraf import run_telegraf_once, telegraf_agent

    done = run_telegraf_once(config_text, {"INFLUX_TOKEN": org.token})
    assert done.returncode == 0, done.stderr

    with telegraf_agent(config_text, {"INFLUX_TOKEN": org.token}) as agent:
        ...  # wait for its points; agent.log() is what it wrote so far

Telegraf substitutes ``${NAME}`` in the configuration with environment variables: ``env`` is
added to this process's environment for it, and ``TELEGRAF_WORK_DIR`` names the throwaway
directory it runs in (for ``outputs.file`` and the like).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rubin_monitoring.services.telegraf_toml import EnvReference, telegraf_toml
from support.binaries import cached_binary, require_binary

__all__ = [
    "TELEGRAF_VERSION",
    "TelegrafAgent",
    "TelegrafUnavailable",
    "generated_toml",
    "require_telegraf",
    "run_telegraf_once",
    "telegraf_agent",
    "telegraf_binary",
]

TELEGRAF_VERSION = "1.37.2"


class TelegrafUnavailable(Exception):
    """No telegraf binary: the reason says what to do."""


def telegraf_binary() -> Path | None:
    """``$TELEGRAF_BIN``, else the cached build of ``scripts/provision-telegraf``, else None."""
    return cached_binary("TELEGRAF_BIN", f"telegraf-{TELEGRAF_VERSION}/telegraf")


def require_telegraf() -> Path:
    """The telegraf binary, or :class:`TelegrafUnavailable` saying how to get one."""
    hint = "run scripts/provision-telegraf or set TELEGRAF_BIN"
    return require_binary(telegraf_binary(), "telegraf", hint, TelegrafUnavailable)


def _marked(value: Any) -> Any:
    if isinstance(value, str):
        return EnvReference(value) if "${" in value else value
    if isinstance(value, Mapping):
        return {key: _marked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_marked(item) for item in value]
    return value


def generated_toml(config: Mapping[str, Any]) -> str:
    """A generated configuration that a test parsed and changed, written back as the
    generator writes it (:func:`~rubin_monitoring.services.telegraf_toml.telegraf_toml`: each
    plugin a table of its own, where Telegraf reads its tags and filters); its ``${VAR}``
    references are the generator's."""
    return telegraf_toml([], _marked(config))


def _environment(work_dir: Path, env: Mapping[str, str] | None) -> dict[str, str]:
    return {**os.environ, "TELEGRAF_WORK_DIR": str(work_dir), **(env or {})}


def run_telegraf_once(
    config_text: str,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = 120,
    args: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``telegraf --config FILE --once`` (one gather, one flush; more command-line
    ``args``) in a throwaway directory.

    The result has Telegraf's exit code and its output as text (its log goes to stderr).
    """
    binary = require_telegraf()
    work_dir = Path(tempfile.mkdtemp(prefix="rubin-telegraf-"))
    try:
        config = work_dir / "telegraf.conf"
        config.write_text(config_text)
        return subprocess.run(
            [str(binary), "--config", str(config), "--once", *args],
            cwd=work_dir,
            env=_environment(work_dir, env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


@dataclass(frozen=True)
class TelegrafAgent:
    """A running Telegraf agent."""

    process: subprocess.Popen[bytes]
    work_dir: Path
    log_file: Path

    def log(self) -> str:
        """Everything the agent logged so far (stdout and stderr)."""
        return self.log_file.read_text(errors="replace")


def _accepts(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def telegraf_agent(
    config_text: str,
    env: Mapping[str, str] | None = None,
    *,
    start_timeout: float = 30,
    args: Sequence[str] = (),
    ports: Sequence[tuple[str, int]] = (),
) -> Iterator[TelegrafAgent]:
    """Run Telegraf continuously on ``config_text`` (with more command-line ``args``) until
    the block ends, then stop it (SIGTERM: it flushes its outputs first).

    Waits until the agent has started (its ``Starting Telegraf`` log line) and every one of
    ``ports`` (host, port: its listeners) accepts connections, and raises ``RuntimeError``
    with its log if it exits before that.
    """
    binary = require_telegraf()
    work_dir = Path(tempfile.mkdtemp(prefix="rubin-telegraf-"))
    config = work_dir / "telegraf.conf"
    config.write_text(config_text)
    log_file = work_dir / "telegraf.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [str(binary), "--config", str(config), *args],
            cwd=work_dir,
            env=_environment(work_dir, env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    agent = TelegrafAgent(process, work_dir, log_file)
    try:
        deadline = time.monotonic() + start_timeout
        while "Starting Telegraf" not in agent.log() or not all(map(_accepts, ports)):
            if process.poll() is not None:
                raise RuntimeError(
                    f"telegraf exited with {process.returncode} at start; its log:\n{agent.log()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"telegraf not started after {start_timeout}s:\n{agent.log()}")
            time.sleep(0.1)
        yield agent
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(work_dir, ignore_errors=True)
