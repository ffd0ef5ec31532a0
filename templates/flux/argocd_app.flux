{% extends "_fleet_alert.flux" %}
{% block summary %}
// Check "argocd_app": an Argo CD Application whose health is Degraded or Missing, or that has
// been OutOfSync for longer than {{ argocd_sync_grace }}, at its latest state in the last
// {{ window }}. One finding per Application and problem (subjects "health" and "sync"), tagged
// with the bucket of the application it deploys (the Application's name).
//
// Input: Argo CD's application controller, scraped into the bucket {{ application }}:
// {{ m.ARGOCD_APP_INFO }} (measurement {{ m.PROMETHEUS }}), one series per Application and
// state (labels {{ m.ARGOCD_APP_NAME }}, {{ m.ARGOCD_HEALTH_STATUS }}, {{ m.ARGOCD_SYNC_STATUS }}),
// with the "cluster" tag. A state change starts a new series, so an Application's state is its
// series with the latest point.
{% endblock %}
{% block findings %}
{% include "_bucket_of.flux" %}

application = {{ application|flux_string }}
graceText = {{ argocd_sync_grace|flux_string }}
appKey = (r) => orUnknown(v: r.cluster) + "/" + orUnknown(v: r.{{ m.ARGOCD_APP_NAME }})

// The current state of each Application: the latest point of its series, all in one table.
current =
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == {{ m.PROMETHEUS|flux_string }} and r._field == {{ m.ARGOCD_APP_INFO|flux_string }}
                    and
                    r.{{ m.ARGOCD_HEALTH_STATUS }} != "" and r.{{ m.ARGOCD_SYNC_STATUS }} != "",
        )
        |> last()
        // Every table has these columns, in this order, so sort() is safe (Flux 0.196).
        |> keep(columns: ["_time", "cluster", {{ m.ARGOCD_HEALTH_STATUS|flux_string }}, {{ m.ARGOCD_APP_NAME|flux_string }}, {{ m.ARGOCD_SYNC_STATUS|flux_string }}])
        |> group(columns: ["cluster", {{ m.ARGOCD_APP_NAME|flux_string }}])
        |> sort(columns: ["_time"])
        |> last(column: "_time")
        |> group()

outOfSyncKeys =
    current
        |> filter(fn: (r) => r.{{ m.ARGOCD_SYNC_STATUS }} == "OutOfSync")
        |> map(fn: (r) => ({key: appKey(r: r)}))
        |> findColumn(fn: (key) => true, column: "key")

// The Applications out of sync at a point at least the grace old, and those in any other sync
// state at a point since (read only when one is out of sync now).
keysOf = (tables=<-) =>
    tables
        |> last()
        |> keep(columns: ["cluster", {{ m.ARGOCD_APP_NAME|flux_string }}])
        |> group()
        |> map(fn: (r) => ({key: appKey(r: r)}))
        |> findColumn(fn: (key) => true, column: "key")
outOfSyncBefore =
    if length(arr: outOfSyncKeys) == 0 then
        []
    else
        from(bucket: application)
            |> range(start: -{{ argocd_lookback }}, stop: -{{ argocd_sync_grace }})
            |> filter(
                fn: (r) =>
                    r._measurement == {{ m.PROMETHEUS|flux_string }} and r._field == {{ m.ARGOCD_APP_INFO|flux_string }}
                        and
                        r.{{ m.ARGOCD_SYNC_STATUS }} == "OutOfSync",
            )
            |> keysOf()
otherSince =
    if length(arr: outOfSyncKeys) == 0 then
        []
    else
        from(bucket: application)
            |> range(start: -{{ argocd_sync_grace }})
            |> filter(
                fn: (r) =>
                    r._measurement == {{ m.PROMETHEUS|flux_string }} and r._field == {{ m.ARGOCD_APP_INFO|flux_string }}
                        and
                        r.{{ m.ARGOCD_SYNC_STATUS }} != "OutOfSync",
            )
            |> keysOf()

message = (r, problem) =>
    "Argo CD Application " + r.{{ m.ARGOCD_APP_NAME }} + " (application " + bucketOf(name: r.{{ m.ARGOCD_APP_NAME }})
        + ") on cluster " + orUnknown(v: r.cluster) + problem

unhealthy =
    current
        |> filter(fn: (r) => r.{{ m.ARGOCD_HEALTH_STATUS }} == "Degraded" or r.{{ m.ARGOCD_HEALTH_STATUS }} == "Missing")
        |> map(
            fn: (r) =>
                ({
                    cluster: r.cluster,
                    application: bucketOf(name: r.{{ m.ARGOCD_APP_NAME }}),
                    subject: "health",
                    value: 1.0,
                    message:
                        message(
                            r: r,
                            problem:
                                " is " + r.{{ m.ARGOCD_HEALTH_STATUS }} + " (sync status " + r.{{ m.ARGOCD_SYNC_STATUS }} + ").",
                        ),
                }),
        )

outOfSync =
    current
        |> filter(
            fn: (r) =>
                r.{{ m.ARGOCD_SYNC_STATUS }} == "OutOfSync" and contains(value: appKey(r: r), set: outOfSyncBefore)
                    and
                    not contains(value: appKey(r: r), set: otherSince),
        )
        |> map(
            fn: (r) =>
                ({
                    cluster: r.cluster,
                    application: bucketOf(name: r.{{ m.ARGOCD_APP_NAME }}),
                    subject: "sync",
                    value: 1.0,
                    message: message(r: r, problem: " has been OutOfSync for more than " + graceText + "."),
                }),
        )

findings = union(tables: [unhealthy, outOfSync])
{% endblock %}
