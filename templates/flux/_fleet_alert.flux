option task = {name: {{ task_name|flux_string }}, every: {{ every }}, offset: {{ offset }}}

// Rendered by rubin-monitoring from templates/flux/{{ check }}.flux: change the template, not
// this task (taskmaker replaces a task whose script differs from the rendered one).
//
{% block summary %}{% endblock %}
//
// Output: one point per problem in the alert bucket: measurement "alert", tags check,
// application, cluster, severity, dedup_key, fields message (string) and value (float), at the
// run's now().

alertBucket = {{ alert_bucket|flux_string }}
checkName = {{ check|flux_string }}
severity = {{ severity|flux_string }}

// A tag value, or "unknown" when it is missing (an empty tag cannot be written).
orUnknown = (v) => if exists v and v != "" then v else "unknown"

// A float with one decimal, as text ("93.4").
oneDecimal = (v) => string(v: float(v: int(v: v * 10.0 + 0.5)) / 10.0)

// findings: one row per problem with the columns cluster, application, subject (what tells
// problems of one cluster and application apart), message (string) and value (float).
{% block findings %}{% endblock %}

findings
    |> map(
        fn: (r) => {
            cluster = orUnknown(v: r.cluster)
            application = orUnknown(v: r.application)

            return {
                _time: now(),
                _measurement: "alert",
                check: checkName,
                application: application,
                cluster: cluster,
                severity: severity,
                dedup_key: checkName + "/" + cluster + "/" + application + "/" + r.subject,
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
