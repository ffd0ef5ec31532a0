from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from rubin_monitoring.exceptions import InventoryError
from rubin_monitoring.services.inventory import read_inventory


def write(root: Path, name: str, text: str) -> None:
    path = root / "environments" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_environments_merge_defaults_and_overrides(tmp_path: Path) -> None:
    write(
        tmp_path, "values.yaml", "applications:\n  argocd: true\n  nublado: false\n  mobu-x: true\n"
    )
    write(
        tmp_path,
        "values-dev.yaml",
        "name: dev\nfqdn: dev.example.com\napplications:\n  nublado: true\n  mobu-x: false\n",
    )
    write(tmp_path, "values-prod.yaml", "name: prod\nfqdn: prod.example.com\napplications: null\n")
    write(tmp_path, "values-bare.yaml", "fqdn: bare.example.com\n")
    write(tmp_path, "README.md", "not an environment")
    inventory = read_inventory(tmp_path)
    by_name = {env.name: env for env in inventory.environments}
    assert by_name["dev"].applications == ("argocd", "nublado")
    assert by_name["prod"].applications == ("argocd", "mobu-x")
    assert by_name["bare"].applications == ("argocd", "mobu-x")
    assert by_name["bare"].file == "environments/values-bare.yaml"
    assert inventory.applications == ["argocd", "mobu-x", "nublado"]
    assert inventory.buckets == ["argocd", "mobu_x", "nublado"]


def test_invalid_names_are_problems_naming_file_and_app(tmp_path: Path) -> None:
    write(tmp_path, "values.yaml", "applications:\n  ok: true\n")
    write(tmp_path, "values-dev.yaml", "applications:\n  bad-: true\n  'we\"ird': true\n")
    inventory = read_inventory(tmp_path)
    assert inventory.applications == ["ok"]
    problems = {p.application: str(p) for p in inventory.problems}
    assert problems["bad-"].startswith("environments/values-dev.yaml: application 'bad-'")
    assert "not a Kubernetes name" in problems["bad-"]
    assert "not a Kubernetes name" in problems['we"ird']


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "values-dev.yaml",
            "applications:\n  a: [true\n",
            "environments/values-dev.yaml: line 3, column 1: invalid YAML",
        ),
        (
            "values-dev.yaml",
            "applications:\n  a: maybe\n",
            "environments/values-dev.yaml: line 2: applications.a: "
            "expected true or false, got a string",
        ),
        (
            "values-dev.yaml",
            "applications: [a, b]\n",
            "environments/values-dev.yaml: line 1: field 'applications' must be a mapping",
        ),
        (
            "values-dev.yaml",
            "applications:\n  ~: true\n",
            "environments/values-dev.yaml: line 2: applications: "
            "key '~' is not a string (quote it)",
        ),
        (
            "values-dev.yaml",
            "applications:\n  a: true\n  on: true\n",
            "environments/values-dev.yaml: line 3: applications: "
            "key 'on' is not a string (quote it)",
        ),
        (
            "values-dev.yaml",
            "applications:\n  123: false\n",
            "environments/values-dev.yaml: line 2: applications: key '123' is not a string",
        ),
        (
            "values-dev.yaml",
            "applications:\n  a: true\n  b: true\n  a: false\n",
            "environments/values-dev.yaml: line 4, column 3: invalid YAML: "
            "duplicate key 'a' (first on line 2)",
        ),
        (
            "values-dev.yaml",
            "applications:\n  a: true\nname: x\napplications:\n  b: true\n",
            "environments/values-dev.yaml: line 4, column 1: invalid YAML: "
            "duplicate key 'applications' (first on line 1)",
        ),
        (
            "values-dev.yaml",
            "applications:\n  ? [a, b]\n  : true\n",
            "environments/values-dev.yaml: line 2, column 5: invalid YAML: "
            "a list or mapping cannot be a key",
        ),
        (
            "values-dev.yaml",
            "applications:\n  a: \x07true\n",
            "environments/values-dev.yaml: invalid YAML: unacceptable character #x0007",
        ),
        ("values-dev.yaml", "- a\n", "environments/values-dev.yaml: expected a mapping"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    write(tmp_path, "values.yaml", "applications:\n  a: true\n")
    write(tmp_path, name, text)
    with pytest.raises(InventoryError) as error:
        read_inventory(tmp_path)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_not_a_phalanx_repository(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"environments/values\.yaml: not found"):
        read_inventory(tmp_path)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a: 'maybe'\n", "a string"),
        ("a: 12\n", "an integer"),
        ("a: [x]\n", "a list"),
        ("a: {x: y}\n", "a mapping"),
        ("a:\n", "null"),
        ("a: 2024-01-01\n", "a date"),
    ],
)
def test_bad_values_are_named_by_type_never_quoted(tmp_path: Path, text: str, shown: str) -> None:
    write(tmp_path, "values.yaml", "applications:\n  " + text.replace("\n", "\n  "))
    write(tmp_path, "values-dev.yaml", "name: dev\n")
    with pytest.raises(InventoryError) as error:
        read_inventory(tmp_path)
    assert str(error.value).endswith(f"applications.a: expected true or false, got {shown}")


OUTSIDE = "applications:\n  a: hunter2-from-outside\n"


def test_an_environment_file_linked_outside_the_repository_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, "values.yaml", "applications:\n  a: true\n")
    (tmp_path / "secret.yaml").write_text(OUTSIDE)
    (root / "environments/values-dev.yaml").symlink_to(tmp_path / "secret.yaml")
    with pytest.raises(InventoryError) as error:
        read_inventory(root)
    assert str(error.value) == (
        "environments/values-dev.yaml: resolves to a file outside the repository; refused"
    )


def test_defaults_linked_outside_the_repository_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, "values-dev.yaml", "name: dev\n")
    (tmp_path / "secret.yaml").write_text(OUTSIDE)
    (root / "environments/values.yaml").symlink_to(tmp_path / "secret.yaml")
    with pytest.raises(InventoryError) as error:
        read_inventory(root)
    assert str(error.value) == (
        "environments/values.yaml: resolves to a file outside the repository; refused"
    )


def test_an_environments_directory_linked_outside_the_repository_is_refused(
    tmp_path: Path,
) -> None:
    write(tmp_path / "elsewhere", "values.yaml", "applications:\n  a: true\n")
    write(tmp_path / "elsewhere", "values-dev.yaml", "name: dev\n")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "environments").symlink_to(tmp_path / "elsewhere/environments")
    with pytest.raises(InventoryError) as error:
        read_inventory(root)
    assert str(error.value) == (
        "environments: resolves to a directory outside the repository; refused"
    )


def test_links_inside_the_repository_are_followed(tmp_path: Path) -> None:
    write(tmp_path, "values.yaml", "applications:\n  a: true\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/dev.yaml").write_text("name: dev\napplications:\n  b: true\n")
    (tmp_path / "environments/values-dev.yaml").symlink_to("../shared/dev.yaml")
    assert read_inventory(tmp_path).applications == ["a", "b"]


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    write(tmp_path, "values.yaml", "applications:\n  a: true\n")
    write(tmp_path, "values-dev.yaml", "# " + "x" * 997 + "\n")
    assert len(read_inventory(tmp_path, max_file_bytes=1000).environments) == 1
    write(tmp_path, "values-dev.yaml", "# " + "x" * 998 + "\n")
    with pytest.raises(InventoryError) as error:
        read_inventory(tmp_path, max_file_bytes=1000)
    assert str(error.value) == (
        "environments/values-dev.yaml: 1001 bytes, more than the limit of 1000 bytes; refused"
    )


def test_the_default_limit_is_one_mebibyte_and_costs_no_memory(tmp_path: Path) -> None:
    write(tmp_path, "values.yaml", "# " + "x" * (10 * 2**20) + "\n")
    write(tmp_path, "values-dev.yaml", "name: dev\n")
    tracemalloc.start()
    try:
        with pytest.raises(InventoryError, match="more than the limit of 1048576 bytes"):
            read_inventory(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_quoted_keys_are_the_strings_written(tmp_path: Path) -> None:
    write(
        tmp_path, "values.yaml", "applications:\n  'on': true\n  \"123\": true\n  'null': false\n"
    )
    write(tmp_path, "values-dev.yaml", "name: dev\napplications:\n  'null': true\n")
    assert read_inventory(tmp_path).applications == ["123", "null", "on"]


def test_merge_keys_are_not_duplicates_and_other_keys_may_be_anything(tmp_path: Path) -> None:
    write(
        tmp_path,
        "values.yaml",
        "common: &common\n  a: true\n  b: true\n"
        "applications:\n  <<: *common\n  b: false\n"
        "helm:\n  on: 1\n  123: x\n  ~: y\n",
    )
    write(tmp_path, "values-dev.yaml", "name: dev\n")
    assert read_inventory(tmp_path).applications == ["a"]


def test_a_link_loop_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, "values.yaml", "applications:\n  a: true\n")
    (tmp_path / "environments/values-dev.yaml").symlink_to("values-dev.yaml")
    with pytest.raises(InventoryError) as error:
        read_inventory(tmp_path)
    assert str(error.value) == "environments/values-dev.yaml: cannot resolve: a loop of links"
