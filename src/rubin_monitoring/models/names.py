"""What a name from the configuration repository may be, and how to show any text safely.

Names from the repository become Kubernetes namespaces and Secret keys, the ``cluster`` tag,
TOML and YAML values, Flux strings, Slack text and log lines. They are validated once, where the
inventory is read, by the rules of what they become; every writer still escapes what it writes.
"""

from __future__ import annotations

import re

KUBERNETES_NAME_MAX = 63
_KUBERNETES_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$")
HOSTNAME_MAX = 253
_PLAIN = re.compile(r"^[A-Za-z0-9_.:/+-]{1,63}$")


def kubernetes_name_problem(name: str) -> str | None:
    """Why ``name`` is not a Kubernetes name (an RFC 1123 label: what a namespace must be), or
    None: 1 to 63 lowercase letters, digits and ``-``, starting and ending with a letter or
    digit."""
    if not name:
        return "is empty"
    if len(name) > KUBERNETES_NAME_MAX:
        return f"is longer than {KUBERNETES_NAME_MAX} characters"
    if not _KUBERNETES_NAME.match(name):
        return (
            "is not a Kubernetes name (lowercase letters, digits and '-', starting and ending "
            "with a letter or digit)"
        )
    return None


def hostname_problem(fqdn: str) -> str | None:
    """Why ``fqdn`` is not a host name with an optional ``:port`` (no scheme, credentials,
    path, query or fragment), or None."""
    host, colon, port = fqdn.partition(":")
    if colon and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return "has a port that is not a number from 1 to 65535"
    if not host or len(host) > HOSTNAME_MAX:
        return f"must be a host name of 1 to {HOSTNAME_MAX} characters"
    if not all(_HOST_LABEL.match(label) for label in host.split(".")):
        return (
            "is not a host name (labels of letters, digits and '-' separated by '.'; no "
            "scheme, user, path or query)"
        )
    return None


def quoted(text: str, limit: int = 40) -> str:
    """``text`` quoted for one line of a message, every control, line-breaking or invisible
    character escaped (``repr``), cut to about ``limit`` characters."""
    text_repr = repr(text)
    return text_repr if len(text_repr) <= limit else text_repr[: limit - 4] + "...'"


def shown(text: str, limit: int = 40) -> str:
    """``text`` made safe for one line of a message: as it is when it holds only plain
    characters, else :func:`quoted`."""
    return text if _PLAIN.match(text) else quoted(text, limit)


def one_line(text: str) -> str:
    """``text`` with every character that could start a new line or hide text (controls,
    line and paragraph separators, bidirectional overrides) escaped, so a log or report line
    cannot be forged; plain text is unchanged."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
