option task = {name: {{ task_name|flux_string }}, every: {{ every }}, offset: {{ offset }}}

// Rendered by rubin-monitoring from templates/flux/{{ check }}.flux: change the template, not
// this task (taskmaker replaces a task whose script differs from the rendered one).
//
{% block summary %}{% endblock %}
//
// Input: Telegraf's kubernetes_pod_container measurement in the application's bucket, written by
// inputs.kube_inventory (restarts_total, state_code, state_reason; tags phase, state, readiness;
// resource limits) and inputs.kubernetes (cpu_usage_nanocores, memory_working_set_bytes), with a
// per-cluster "cluster" tag from Telegraf's global tags.
// Output: one point per problem in the alert bucket: measurement "alert", tags check,
// application, cluster, severity, dedup_key, fields message (string) and value (float), at the
// run's now().

application = {{ application|flux_string }}
alertBucket = {{ alert_bucket|flux_string }}
checkName = {{ check|flux_string }}
severity = {{ severity|flux_string }}
windowText = {{ window|flux_string }}

// A tag value, or "unknown" when Telegraf did not set it (an empty tag cannot be written).
orUnknown = (v) => if exists v and v != "" then v else "unknown"

// The start of every message: which container, where.
describe = (r) =>
    "Container " + orUnknown(v: r.container_name) + " of pod " + orUnknown(v: r.pod_name)
        + " (namespace " + orUnknown(v: r.namespace) + ") of application " + application
        + " on cluster " + orUnknown(v: r.cluster)

// A float with one decimal, as text ("93.4").
oneDecimal = (v) => string(v: float(v: int(v: v * 10.0 + 0.5)) / 10.0)

// findings: one row per problem with the columns cluster, namespace, pod_name, container_name,
// message (string) and value (float).
{% block findings %}{% endblock %}

findings
    |> map(
        fn: (r) => {
            cluster = orUnknown(v: r.cluster)
            dedupKey =
                checkName + "/" + cluster + "/" + application + "/" + orUnknown(v: r.namespace)
                    + "/" + orUnknown(v: r.pod_name) + "/" + orUnknown(v: r.container_name)

            return {
                _time: now(),
                _measurement: "alert",
                check: checkName,
                application: application,
                cluster: cluster,
                severity: severity,
                dedup_key: dedupKey,
                message: r.message,
                value: r.value,
            }
        },
    )
    |> to(
        bucket: alertBucket,
        tagColumns: ["check", "application", "cluster", "severity", "dedup_key"],
        fieldFn: (r) => ({message: r.message, value: r.value}),
    )
