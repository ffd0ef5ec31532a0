"""The one YAML reader: the same rules for every file people write (issue 19: the inventory's
and the routes file's loaders used to treat ``<<:`` merges differently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rubin_monitoring.exceptions import ConfigError
from rubin_monitoring.services.routes import parse_routing
from rubin_monitoring.yaml_files import YamlMapping, YamlProblem, load_mapping, parse_yaml

MERGED = "base: &base\n  a: 1\n  b: 2\nthing:\n  <<: *base\n  b: 3\n"


def test_a_written_key_overrides_a_merged_one() -> None:
    data = parse_yaml(MERGED)
    assert isinstance(data, YamlMapping)
    assert data["thing"] == {"a": 1, "b": 3}
    assert data["thing"].line("b") == 6 and data["thing"].start_line == 5


def test_a_key_written_twice_names_both_lines_and_never_the_value() -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_yaml("a: secret-one\nb: 2\na: secret-two\n")
    problem = caught.value
    assert (problem.line, problem.text) == (3, "invalid YAML: duplicate key 'a' (first on line 1)")
    assert "secret" not in str(problem)


def test_routes_files_follow_the_same_rules() -> None:
    text = (
        "routes:\n  - &first\n    name: a\n    webhook_env: HOOK\n    severities: [critical]\n"
        "  - <<: *first\n    name: b\n    severities: [warning]\n"
    )
    first, second = parse_routing(text, "routes.yaml", {"HOOK": "https://hooks.example/x"}).routes
    assert (first.name, second.name) == ("a", "b")
    assert second.severities == frozenset({"warning"})
    with pytest.raises(ConfigError, match=r"line 4: .*duplicate key 'name' \(first on line 3\)"):
        parse_routing("routes:\n  - webhook_env: HOOK\n    name: a\n    name: b\n", "r.yaml")


@pytest.mark.parametrize(
    ("content", "limit", "says"),
    [
        (b"x" * 101, 100, "101 bytes, more than the limit of 100 bytes"),
        (b"a: \xff\n", 100, "cannot read: UnicodeDecodeError"),
        (b"[" * 5000 + b"]" * 5000, 20_000, "nested too deeply"),
        (b"- a\n", 100, "expected a mapping at the top level"),
    ],
)
def test_files_are_bounded_and_errors_are_one_line(
    tmp_path: Path, content: bytes, limit: int, says: str
) -> None:
    path = tmp_path / "file.yaml"
    path.write_bytes(content)
    with pytest.raises(YamlProblem) as caught:
        load_mapping(path, "file.yaml", max_bytes=limit)
    assert caught.value.text.startswith("file.yaml") and says in caught.value.text
    assert "\n" not in caught.value.text
