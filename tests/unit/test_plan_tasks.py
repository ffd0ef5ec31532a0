from __future__ import annotations

from rubin_monitoring.models.tasks import (
    ObservedTask,
    Scope,
    TaskSpec,
    task_description,
    task_identity,
)
from rubin_monitoring.services.tasks import flux_body, plan_tasks, stagger_offset

FLUX = 'option task = {name: "argocd cpu", every: 5m, offset: 17s}\n\nfrom(bucket: "argocd")\n'


BOT = "0a0b0c0d0e0f0001"


def spec(app: str = "argocd", check: str = "cpu", flux: str = FLUX) -> TaskSpec:
    return TaskSpec(app, check, f"{app} {check}", flux, 300, 17)


def stored(
    app: str = "argocd",
    check: str = "cpu",
    id: str = "0001",
    flux: str = FLUX,
    every: str = "5m",
    offset: str | None = "17s",
    status: str = "active",
    description: str | None = None,
    owner_id: str = BOT,
) -> ObservedTask:
    return ObservedTask(
        id,
        f"{app} {check}",
        flux,
        every,
        offset,
        status,
        description or task_description(app, check),
        owner_id,
    )


def actions(plan: object) -> list[tuple[str, str, str]]:
    return [(c.action.value, c.name, c.reason) for c in plan.changes]  # type: ignore[attr-defined]


def test_converged_task_is_unchanged_even_if_the_server_rewrote_its_option_line() -> None:
    rewritten = FLUX.replace(
        'option task = {name: "argocd cpu", every: 5m, offset: 17s}',
        'option task = {\n    name: "argocd cpu",\n    every: 5m,\n    offset: 17s,\n}',
    )
    plan = plan_tasks([spec()], [stored(flux=rewritten)], owner_id=BOT)
    assert plan.changes == [] and plan.unchanged == 1


def test_hand_edits_are_updates_in_place() -> None:
    cases = {
        "Flux differs from the template": stored(flux=FLUX + "|> yield()\n"),
        "every 1h -> 300s": stored(every="1h"),
        "offset 0s -> 17s": stored(offset=None),
        "status inactive -> active": stored(status="inactive"),
    }
    for reason, task in cases.items():
        plan = plan_tasks([spec()], [task], owner_id=BOT)
        assert actions(plan) == [("update", "argocd cpu", reason)]
        assert plan.changes[0].current is task


def test_identity_comes_from_the_description_not_the_name() -> None:
    renamed = ObservedTask(
        "0001",
        "someone renamed me",
        FLUX,
        "5m",
        "17s",
        "active",
        task_description("argocd", "cpu"),
        BOT,
    )
    lookalike = ObservedTask("0002", "argocd cpu", FLUX, "5m", "17s", "active", "hand made", BOT)
    plan = plan_tasks([spec()], [renamed, lookalike], force=False, prune=True, owner_id=BOT)
    assert actions(plan) == [("update", "argocd cpu", "name 'someone renamed me' -> 'argocd cpu'")]
    assert plan.orphans == []


def test_force_recreates_only_owned_desired_tasks() -> None:
    theirs = stored(id="0009", description="not ours")
    plan = plan_tasks(
        [spec()], [stored(), theirs, stored("gone", "cpu", id="0005")], force=True, owner_id=BOT
    )
    assert [(a, n) for a, n, _ in actions(plan)] == [("recreate", "argocd cpu")]
    assert [o.name for o in plan.orphans] == ["gone cpu"]


def test_missing_tasks_are_created_and_duplicates_removed() -> None:
    plan = plan_tasks(
        [spec(), spec(check="restarts")], [stored(id="0002"), stored(id="0001")], owner_id=BOT
    )
    assert sorted(actions(plan)) == [
        ("create", "argocd restarts", "missing"),
        ("delete", "argocd cpu", "duplicate of task 0001"),
    ]
    deleted = [c for c in plan.changes if c.action.value == "delete"]
    assert deleted[0].current is not None and deleted[0].current.id == "0002"


def test_orphans_are_deleted_only_with_prune() -> None:
    observed = [stored("gone", "cpu")]
    assert plan_tasks([], observed, owner_id=BOT).changes == []
    assert [(a, n) for a, n, _ in actions(plan_tasks([], observed, prune=True, owner_id=BOT))] == [
        ("delete", "gone cpu")
    ]


def test_offsets_are_stable_and_spread() -> None:
    offsets = {stagger_offset(f"app{i}", "cpu", 300) for i in range(200)}
    assert all(0 <= o < 300 for o in offsets)
    assert len(offsets) > 100
    assert stagger_offset("argocd", "cpu", 300) == stagger_offset("argocd", "cpu", 300)


def test_flux_body_ignores_option_line_and_formatting_but_not_strings_or_comments() -> None:
    script = FLUX + '// a "quoted" comment\n|> filter(fn: (r) => r.a == "x  y")\n'
    reformatted = (
        FLUX + '// a "quoted"   comment\n|> filter(\n    fn: (r) =>\n        r.a\n'
        '        == "x  y",\n)\n'
    )
    assert flux_body(FLUX) == 'from(bucket:"argocd")'
    assert flux_body(reformatted) == flux_body(script)
    assert flux_body("f(a: [1, 2,], b: {x: 1,},)") == flux_body("f(a: [1, 2], b: {x: 1})")
    assert flux_body(script.replace('"x  y"', '"x y"')) != flux_body(script)
    assert flux_body(script.replace("quoted", "edited")) != flux_body(script)


def test_flux_body_normalises_the_code_inside_interpolated_strings_only() -> None:
    """The server's formatter breaks the code of a long ``${...}`` over lines, with a trailing
    comma; the text around it, and strings nested inside it, are kept as written."""
    script = 'x = "a ${f(v: r.n, w: if r.n == 1 then "one" else "many")}  b ${y}"\n'
    reformatted = (
        'x =\n    "a ${f(\n        v: r.n,\n        w: if r.n == 1 then "one" else "many",\n'
        '    )}  b ${ y }"\n'
    )
    assert flux_body(reformatted) == flux_body(script)
    assert flux_body(script) == 'x="a ${f(v:r.n,w:ifr.n==1then"one"else"many")}  b ${y}"'
    assert flux_body(script.replace("}  b", "} b")) != flux_body(script)
    assert flux_body(script.replace('"many"', '"many "')) != flux_body(script)
    assert flux_body('s = "\\${not code}"') == 's="\\${not code}"'


def test_a_copied_description_does_not_make_a_task_ours() -> None:
    """Issue 8: a person's task described exactly like the toolkit's is neither updated,
    deleted as a duplicate, nor pruned; only the owner ID decides."""
    copy = stored(id="0000", status="inactive", flux='from(bucket: "x")', owner_id="person")
    legacy = (
        "Alert check restarts of gafaelfawr (managed-by=rubin-monitoring app=gafaelfawr "
        "check=restarts)"
    )
    copy_legacy = stored("gafaelfawr", "restarts", id="0003", description=legacy, owner_id="person")
    plan = plan_tasks(
        [spec()], [copy, copy_legacy, stored(id="0001")], prune=True, force=True, owner_id=BOT
    )
    assert [(c.action.value, c.current.id if c.current else None) for c in plan.changes] == [
        ("recreate", "0001")
    ]
    assert plan_tasks([spec()], [copy], owner_id=BOT).changes[0].action.value == "create"


def test_marker_fields_are_parsed_exactly() -> None:
    assert task_identity(task_description("a", "cpu")) == (Scope.BUCKET, "a", "cpu")
    assert task_identity("x (managed-by=rubin-monitoring app=a check=cpu)") == (
        Scope.BUCKET,
        "a",
        "cpu",
    )
    for fake in [
        "NOT managed-by=rubin-monitoring bucket=a check=cpu",
        "x (NOT managed-by=rubin-monitoring bucket=a check=cpu)",
        "x (managed-by=rubin-monitoring bucket=a check=cpu) and more",
        "x (managed-by=rubin-monitoring-fork bucket=a check=cpu)",
        "x (managed-by=rubin-monitoring bucket=a bucket=b check=cpu)",
        "x (managed-by=rubin-monitoring  bucket=a check=cpu)",
        None,
    ]:
        assert task_identity(fake) is None, fake
