{% extends "_fleet_alert.flux" %}
{% block summary %}
// Check "job_failed": a Job of application {{ application }} that failed: its Failed condition is
// true at its latest point in the last {{ window }} (it ran out of retries or time). One finding
// per Job: a pod that failed while its Job still retries is not one. A Job started by a CronJob
// that has succeeded since the Job started is not reported any more.
//
// Input: kube-state-metrics' series in the application's bucket (measurement
// {{ m.PROMETHEUS }}, routed there by their {{ m.NAMESPACE }} label), with the "cluster" tag:
// {{ m.KSM_JOB_FAILED }} (label {{ m.KSM_CONDITION }}), {{ m.KSM_JOB_START_TIME }} and
// {{ m.KSM_JOB_OWNER }} (labels {{ m.KSM_OWNER_KIND }}, {{ m.KSM_OWNER_NAME }}) of each Job (label
// {{ m.KSM_JOB_NAME }}), {{ m.KSM_CRONJOB_LAST_SUCCESSFUL_TIME }} of each CronJob (label
// {{ m.KSM_CRONJOB }}).
{% endblock %}
{% block findings %}
application = {{ application|flux_string }}

// The Jobs whose Failed condition is true, one row each.
failed =
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == {{ m.PROMETHEUS|flux_string }} and r._field == {{ m.KSM_JOB_FAILED|flux_string }}
                    and
                    r.{{ m.KSM_CONDITION }} == "true",
        )
        |> last()
        |> filter(fn: (r) => r._value > 0.0)
        |> keep(columns: ["cluster", "namespace", {{ m.KSM_JOB_NAME|flux_string }}])
        |> group()

jobKey = (r) => orUnknown(v: r.cluster) + "/" + orUnknown(v: r.namespace) + "/" + orUnknown(v: r.{{ m.KSM_JOB_NAME }})
failedKeys =
    failed
        |> map(fn: (r) => ({key: jobKey(r: r)}))
        |> findColumn(fn: (key) => true, column: "key")

// The latest point of a series of each Job or CronJob in the window, without its other tags.
latest = (field, columns) =>
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(fn: (r) => r._measurement == {{ m.PROMETHEUS|flux_string }} and r._field == field)
        |> last()
        |> keep(columns: columns)
        |> group()

// The failed Jobs of a CronJob that has succeeded since they started (read only when a Job
// failed).
cleared =
    if length(arr: failedKeys) == 0 then
        []
    else
        join(
            tables: {
                job:
                    join(
                        tables: {
                            owner:
                                from(bucket: application)
                                    |> range(start: -{{ window }})
                                    |> filter(
                                        fn: (r) =>
                                            r._measurement == {{ m.PROMETHEUS|flux_string }} and r._field == {{ m.KSM_JOB_OWNER|flux_string }}
                                                and
                                                r.{{ m.KSM_OWNER_KIND }} == "CronJob",
                                    )
                                    |> last()
                                    |> keep(columns: ["cluster", "namespace", {{ m.KSM_JOB_NAME|flux_string }}, {{ m.KSM_OWNER_NAME|flux_string }}])
                                    |> group()
                                    |> rename(columns: { {{ m.KSM_OWNER_NAME }}: {{ m.KSM_CRONJOB|flux_string }} }),
                            success:
                                latest(field: {{ m.KSM_CRONJOB_LAST_SUCCESSFUL_TIME|flux_string }}, columns: ["_value", "cluster", "namespace", {{ m.KSM_CRONJOB|flux_string }}])
                                    |> rename(columns: {_value: "succeeded"}),
                        },
                        on: ["cluster", "namespace", {{ m.KSM_CRONJOB|flux_string }}],
                    ),
                start:
                    latest(field: {{ m.KSM_JOB_START_TIME|flux_string }}, columns: ["_value", "cluster", "namespace", {{ m.KSM_JOB_NAME|flux_string }}])
                        |> rename(columns: {_value: "started"}),
            },
            on: ["cluster", "namespace", {{ m.KSM_JOB_NAME|flux_string }}],
        )
            |> filter(fn: (r) => r.succeeded > r.started)
            |> map(fn: (r) => ({key: jobKey(r: r)}))
            |> findColumn(fn: (key) => true, column: "key")

findings =
    failed
        |> filter(fn: (r) => not contains(value: jobKey(r: r), set: cleared))
        |> map(
            fn: (r) => {
                namespace = orUnknown(v: r.namespace)
                job = orUnknown(v: r.{{ m.KSM_JOB_NAME }})

                return {
                    cluster: r.cluster,
                    application: application,
                    subject: namespace + "/" + job,
                    value: 1.0,
                    message:
                        "Job " + job + " (namespace " + namespace + ") of application " + application
                            + " on cluster " + orUnknown(v: r.cluster) + " failed.",
                }
            },
        )
{% endblock %}
