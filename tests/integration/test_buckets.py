"""bucketmaker and bucketmapper against a real InfluxDB v2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from support.cli import Run, run_cli
from support.orgs import OrgUnderTest

from rubin_monitoring.testing.flux import create_bucket
from rubin_monitoring.testing.phalanx import PhalanxRepo

pytestmark = pytest.mark.integration

APPS = {"argocd": True, "gafaelfawr": True, "mobu-x": True, "sasquatch": False}
ENVS: dict[str, dict[str, Any]] = {
    "idfdev": {"applications": {"sasquatch": True}},
    "minikube": {"applications": {"mobu-x": False}},
    "summit": {},  # no applications key: the defaults
}
EXPECTED_BUCKETS = {
    *("argocd", "gafaelfawr", "mobu_x", "sasquatch"),
    *("multiapp_", "alerted_", "silences_", "influxdb_", "probes_"),
}
# The toolkit's own retentions: findings 1h, records 7d (the longest repeat interval), silences
# 31d (longer than a silence lasts); the others follow BUCKET_RETENTION (default 7d).
OWN_RETENTION = {"multiapp_": 3600, "alerted_": 7 * 86400, "silences_": 31 * 86400}


def api(org: OrgUnderTest) -> httpx.Client:
    return httpx.Client(
        base_url=org.url, headers={"Authorization": f"Token {org.token}"}, timeout=30
    )


def buckets(org: OrgUnderTest) -> dict[str, dict[str, Any]]:
    with api(org) as client:
        body = client.get("/api/v2/buckets", params={"orgID": org.id, "limit": 100}).json()
    return {b["name"]: b for b in body["buckets"] if b["type"] == "user"}


def dbrps(org: OrgUnderTest) -> list[dict[str, Any]]:
    with api(org) as client:
        body = client.get("/api/v2/dbrps", params={"orgID": org.id}).json()
    return [m for m in body["content"] if not m["virtual"]]


def make_unowned_bucket(org: OrgUnderTest, name: str) -> str:
    """A bucket made by hand: no ownership marker, infinite retention."""
    return create_bucket(org, name, retention_seconds=0)


def reconcile(org: OrgUnderTest, repo: PhalanxRepo, *flags: str, **env: str) -> tuple[Run, Run]:
    settings = org.env(PHALANX_REPO=repo.url, **env)
    made = run_cli(["bucketmaker", "--output", "json", *flags], settings)
    mapped = run_cli(["bucketmapper", "--output", "json", *flags], settings)
    return made, mapped


@pytest.fixture
def repo(phalanx: PhalanxRepo) -> PhalanxRepo:
    phalanx.set_apps(APPS, ENVS)
    return phalanx


def test_first_run_creates_exactly_the_buckets_and_mappings(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    made, mapped = reconcile(org, repo)
    assert made.exit_code == 0, made.stderr
    assert mapped.exit_code == 0, mapped.stderr

    observed = buckets(org)
    assert set(observed) == EXPECTED_BUCKETS
    for name, bucket in observed.items():
        expected = OWN_RETENTION.get(name, 7 * 86400)
        assert bucket["retentionRules"][0]["everySeconds"] == expected
        assert "managed-by=rubin-monitoring" in bucket["description"]
    assert {(c["action"], c["name"]) for c in made.changes} == {
        ("create", name) for name in EXPECTED_BUCKETS
    }

    mappings = dbrps(org)
    by_db = {m["database"]: m for m in mappings}
    assert len(mappings) == len(EXPECTED_BUCKETS)
    assert set(by_db) == EXPECTED_BUCKETS
    for name, mapping in by_db.items():
        assert mapping["bucketID"] == observed[name]["id"]
        policy = {"multiapp_": "1h", "silences_": "4w3d"}.get(name, "1w")
        assert mapping["retention_policy"] == policy
        assert mapping["default"] is True
    assert mapped.json()["summary"]["create"] == len(EXPECTED_BUCKETS)


def test_second_run_changes_nothing(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    reconcile(org, repo)
    before = {name: b["id"] for name, b in buckets(org).items()}
    made, mapped = reconcile(org, repo)
    for run in (made, mapped):
        assert run.exit_code == 0
        assert run.changes == []
        assert run.json()["summary"]["unchanged"] == len(EXPECTED_BUCKETS)
    assert {name: b["id"] for name, b in buckets(org).items()} == before


def test_new_app_gets_one_bucket_and_one_mapping(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    reconcile(org, repo)
    repo.set_apps({**APPS, "new-app": True}, ENVS, "enable new-app")
    made, mapped = reconcile(org, repo)
    assert [(c["action"], c["kind"], c["name"]) for c in made.changes] == [
        ("create", "bucket", "new_app")
    ]
    assert [(c["action"], c["kind"], c["name"]) for c in mapped.changes] == [
        ("create", "dbrp", "new_app/1w")
    ]
    assert "new_app" in buckets(org)
    assert sum(m["database"] == "new_app" for m in dbrps(org)) == 1


def test_disabled_app_is_an_orphan_and_kept_until_prune(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    reconcile(org, repo)
    unowned = make_unowned_bucket(org, "hand-made")
    repo.set_apps({**APPS, "gafaelfawr": False}, ENVS, "disable gafaelfawr")

    made, mapped = reconcile(org, repo)
    assert made.exit_code == 0
    assert made.changes == []
    assert [(o["kind"], o["name"]) for o in made.json()["orphans"]] == [("bucket", "gafaelfawr")]
    assert "gafaelfawr" in buckets(org)

    made = run_cli(["bucketmaker", "--output", "json", "--prune"], org.env(PHALANX_REPO=repo.url))
    assert made.exit_code == 0
    assert [(c["action"], c["name"], c["status"]) for c in made.changes] == [
        ("delete", "gafaelfawr", "done")
    ]
    remaining = buckets(org)
    assert "gafaelfawr" not in remaining
    assert remaining["hand-made"]["id"] == unowned

    mapped = run_cli(["bucketmapper", "--output", "json", "--prune"], org.env())
    assert mapped.exit_code == 0
    assert "gafaelfawr" not in {m["database"] for m in dbrps(org)}


def test_force_reapplies_owned_buckets_in_place_and_leaves_unowned_alone(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    unowned_similar = make_unowned_bucket(org, "argocd-backup")
    unowned_same = make_unowned_bucket(org, "sasquatch")
    reconcile(org, repo)
    before = {name: bucket["id"] for name, bucket in buckets(org).items()}
    mappings_before = {(m["database"], m["bucketID"]) for m in dbrps(org)}

    made, mapped = reconcile(org, repo, FORCE="1")
    actions = {(c["action"], c["name"]) for c in made.changes}
    assert ("update", "argocd") in actions
    assert all(name not in ("argocd-backup", "sasquatch") for _, name in actions)
    assert [c["name"] for c in made.json()["conflicts"]] == ["sasquatch"]
    assert made.exit_code == 1  # the conflict needs a human

    after = buckets(org)
    # In place: IDs (so tokens), data and DBRP mappings survive FORCE.
    assert {name: bucket["id"] for name, bucket in after.items()} == before
    assert after["argocd-backup"]["id"] == unowned_similar
    assert after["sasquatch"]["id"] == unowned_same
    assert "managed-by" not in (after["sasquatch"].get("description") or "")
    assert mapped.exit_code == 0
    assert {m["database"] for m in dbrps(org)} == EXPECTED_BUCKETS - {"sasquatch"}
    # bucketmapper's FORCE recreates its mappings, onto the same (unchanged) buckets.
    assert {(m["database"], m["bucketID"]) for m in dbrps(org)} == mappings_before


def test_recreate_buckets_restores_every_mapping_and_says_which_tokens_to_rotate(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    reconcile(org, repo)
    argocd = buckets(org)["argocd"]["id"]
    with api(org) as client:
        hand_made = {
            "orgID": org.id,
            "bucketID": argocd,
            "database": "legacy-argo",
            "retention_policy": "autogen",
            "default": False,
        }
        client.post("/api/v2/dbrps", json=hand_made).raise_for_status()
    legacy_default = {m["database"]: m for m in dbrps(org)}["legacy-argo"]["default"]

    made = run_cli(
        ["bucketmaker", "--output", "json"],
        org.env(PHALANX_REPO=repo.url, RECREATE_BUCKETS="1"),
    )
    assert {c["action"] for c in made.changes} == {"recreate"}
    assert made.exit_code == 1  # tokens name the old bucket IDs: a person must rotate them
    (conflict,) = made.json()["conflicts"]
    # Every role whose token names a recreated bucket, briefly: all three environments'
    # Telegrafs, the notifier (multiapp_, alerted_, silences_), the silencer (silences_), the
    # two Telegrafs outside the clusters and the remote-write receiver.
    roles = [
        "telegraf-idfdev",
        "telegraf-minikube",
        "telegraf-summit",
        "notifier",
        "silencer",
        "probe-telegraf",
        "host-telegraf",
        "receiver",
    ]
    assert conflict["name"] == ", ".join(roles)
    assert "tokenmaker --rotate " + " ".join(f"--role {r}" for r in roles) in conflict["reason"]
    assert "9 recreated bucket(s) (argocd, gafaelfawr, mobu_x and 6 more)" in conflict["reason"]
    assert len(conflict["reason"]) < 400
    after = buckets(org)
    assert after["argocd"]["id"] != argocd
    by_db = {m["database"]: m for m in dbrps(org)}
    assert set(by_db) == EXPECTED_BUCKETS | {"legacy-argo"}
    assert by_db["legacy-argo"]["bucketID"] == after["argocd"]["id"]
    assert by_db["legacy-argo"]["default"] is legacy_default
    assert all(by_db[name]["bucketID"] == after[name]["id"] for name in EXPECTED_BUCKETS)


def test_dry_run_changes_nothing(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    made, mapped = reconcile(org, repo, DRY_RUN="1")
    assert made.exit_code == 0
    assert made.json()["dry_run"] is True
    assert {c["status"] for c in made.changes} == {"planned"}
    assert len(made.changes) == len(EXPECTED_BUCKETS)
    assert buckets(org) == {}
    assert dbrps(org) == []
    assert mapped.exit_code == 0 and mapped.changes == []  # no owned bucket exists yet


def test_retention_change_updates_in_place(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    reconcile(org, repo)
    before = buckets(org)
    made, mapped = reconcile(org, repo, BUCKET_RETENTION="30d")
    assert {(c["action"], c["name"]) for c in made.changes} == {
        ("update", name) for name in EXPECTED_BUCKETS if name not in OWN_RETENTION
    }
    after = buckets(org)
    assert after["argocd"]["id"] == before["argocd"]["id"]
    assert after["argocd"]["retentionRules"][0]["everySeconds"] == 30 * 86400
    assert {m["database"]: m["retention_policy"] for m in dbrps(org)}["argocd"] == "4w2d"
    assert mapped.exit_code == 0


def test_invalid_app_name_is_reported_and_the_rest_proceed(
    org: OrgUnderTest, phalanx: PhalanxRepo
) -> None:
    phalanx.set_apps({"good": True, "-bad": True}, {"dev": {}})
    made = run_cli(["bucketmaker", "--output", "json"], org.env(PHALANX_REPO=phalanx.url))
    assert made.exit_code == 1
    failed = [c for c in made.changes if c["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["name"] == "_bad"
    assert "environments/values-dev.yaml" in failed[0]["reason"]
    assert "not a Kubernetes name" in failed[0]["error"]
    assert set(buckets(org)) == {"good", *OWN_RETENTION, "influxdb_", "probes_"}


def one_error_line(run: Run) -> str:
    lines = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_bad_yaml_names_file_and_line_and_changes_nothing(
    org: OrgUnderTest, phalanx: PhalanxRepo
) -> None:
    phalanx.set_apps({"argocd": True}, {"dev": {}})
    phalanx.write("environments/values-dev.yaml", "name: dev\napplications:\n  argocd: [true\n")
    phalanx.commit("broken")
    run = run_cli(["bucketmaker"], org.env(PHALANX_REPO=phalanx.url))
    assert run.exit_code == 2
    line = one_error_line(run)
    assert "environments/values-dev.yaml" in line
    assert "line 4" in line
    assert buckets(org) == {}


def test_missing_repository(org: OrgUnderTest, tmp_path: Path) -> None:
    missing = (tmp_path / "nowhere").as_uri()
    run = run_cli(["bucketmaker"], org.env(PHALANX_REPO=missing))
    assert run.exit_code == 2
    assert "PHALANX_REPO" in one_error_line(run)
    assert buckets(org) == {}


def test_wrong_ref(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    run = run_cli(["bucketmaker"], org.env(PHALANX_REPO=repo.url, PHALANX_REF="no-such-branch"))
    assert run.exit_code == 2
    assert one_error_line(run) == (
        f"error: PHALANX_REF: ref 'no-such-branch' not found in {repo.url}"
    )


def test_ref_selects_the_branch(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    repo.repo.git.checkout("-b", "next")
    repo.set_apps({**APPS, "only-on-next": True}, ENVS)
    repo.repo.git.checkout("main")
    run = run_cli(
        ["inventory", "--output", "json"], org.env(PHALANX_REPO=repo.url, PHALANX_REF="next")
    )
    assert run.exit_code == 0
    assert "only-on-next" in run.json()["applications"]


def test_wrong_token_exits_3(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    env = org.env(PHALANX_REPO=repo.url)
    env["INFLUXDB_TOKEN"] = "not-a-real-token"
    run = run_cli(["bucketmaker"], env)
    assert run.exit_code == 3
    line = one_error_line(run)
    assert "401" in line and "token was refused" in line


def test_read_only_token_exits_3_and_changes_nothing(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    permissions = [
        {"action": "read", "resource": {"type": t, "orgID": org.id}} for t in ("buckets", "dbrp")
    ]
    permissions.append({"action": "read", "resource": {"type": "orgs", "id": org.id}})
    # The lease (a label) is the first thing a writing run writes.
    lease = [
        {"action": a, "resource": {"type": "labels", "orgID": org.id}} for a in ("read", "write")
    ]
    with api(org) as client:
        tokens = []
        for granted in (permissions, [*permissions, *lease]):
            body = {"orgID": org.id, "permissions": granted}
            response = client.post("/api/v2/authorizations", json=body)
            response.raise_for_status()
            tokens.append(response.json()["token"])
    env = org.env(PHALANX_REPO=repo.url)
    for token, missing in zip(tokens, ("labels", "buckets"), strict=True):
        env["INFLUXDB_TOKEN"] = token
        run = run_cli(["bucketmaker"], env, secrets=[org.token])
        assert run.exit_code == 3
        # InfluxDB 2.7 answers a missing permission with 401 "<permission> is unauthorized".
        assert "lacks the permission" in run.stderr
        assert f"write:orgs/{org.id}/{missing} is unauthorized" in run.stderr
        assert buckets(org) == {}


def test_unreachable_influxdb_exits_3(repo: PhalanxRepo) -> None:
    env = {
        "INFLUXDB_URL": "http://127.0.0.1:9",
        "INFLUXDB_TOKEN": "a-token-that-must-not-leak",
        "INFLUXDB_ORG": "o",
        "PHALANX_REPO": repo.url,
        "HTTP_TIMEOUT": "2",
    }
    run = run_cli(["bucketmapper"], env)
    assert run.exit_code == 3
    assert "cannot reach InfluxDB" in one_error_line(run)


def test_unknown_org_exits_2(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    env = org.env(PHALANX_REPO=repo.url)
    env["INFLUXDB_ORG"] = "no-such-org"
    run = run_cli(["bucketmapper"], env)
    assert run.exit_code == 2
    assert "INFLUXDB_ORG" in one_error_line(run)


def shard_groups(org: OrgUnderTest) -> dict[str, int]:
    return {
        name: bucket["retentionRules"][0]["shardGroupDurationSeconds"]
        for name, bucket in buckets(org).items()
    }


def test_shard_groups_follow_the_setting_in_place(org: OrgUnderTest, repo: PhalanxRepo) -> None:
    """BUCKET_SHARD_DURATION (auto: half the retention) on new buckets, and in place on existing
    ones: an installation made with InfluxDB's default (1d for 7d) is PATCHed, IDs kept."""
    made, _ = reconcile(org, repo, BUCKET_SHARD_DURATION="1d")
    assert made.exit_code == 0, made.stderr
    assert shard_groups(org)["argocd"] == 86400
    assert shard_groups(org)["multiapp_"] == 3600  # a 1h bucket cannot have longer ones
    before = {name: bucket["id"] for name, bucket in buckets(org).items()}

    made, _ = reconcile(org, repo)
    assert made.exit_code == 0, made.stderr
    updated = {c["name"]: c["reason"] for c in made.changes if c["action"] == "update"}
    assert updated["argocd"] == "shard groups 1d -> 3d12h"
    assert "multiapp_" not in updated
    assert shard_groups(org)["argocd"] == 84 * 3600
    assert {name: bucket["id"] for name, bucket in buckets(org).items()} == before
    again, _ = reconcile(org, repo)
    assert again.changes == []


def test_shard_groups_longer_than_the_retention_are_refused(
    org: OrgUnderTest, repo: PhalanxRepo
) -> None:
    made, _ = reconcile(org, repo, BUCKET_SHARD_DURATION="30d")
    assert made.exit_code == 2
    assert "BUCKET_SHARD_DURATION (4w2d) is longer than BUCKET_RETENTION (1w)" in made.stderr
    assert buckets(org) == {}
