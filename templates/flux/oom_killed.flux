{% extends "_alert.flux" %}
{% block summary %}
// Check "oom_killed": a container whose last termination was an OOM kill within the last
// {{ window }}. An older OOM kill, or one followed by a termination for another reason, is not
// reported.
{% endblock %}
{% block input %}
// Input: kube-state-metrics' series in the application's bucket (measurement
// {{ m.PROMETHEUS }}, routed there by their {{ m.NAMESPACE }} label), with the "cluster" tag:
// {{ m.KSM_LAST_TERMINATED_REASON }} (1 per container that terminated before; label
// {{ m.KSM_REASON }}: OOMKilled, Error...) and {{ m.KSM_LAST_TERMINATED_TIMESTAMP }} (when, Unix
// seconds); labels {{ m.KSM_POD }}, {{ m.KSM_CONTAINER }}.
{% endblock %}
{% block findings %}
windowSeconds = {{ window_seconds }}.0
nowSeconds = float(v: int(v: now())) / 1000000000.0

// The latest point of each series: the container's last termination reason if it was an OOM
// kill, and the time of its last termination. One scrape writes both at one time, so they share
// their _time while the OOM kill is the container's last termination; an OOMKilled reason whose
// latest point is older than the latest termination time was followed by another termination.
latest =
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == {{ m.PROMETHEUS|flux_string }}
                    and
                    (r._field == {{ m.KSM_LAST_TERMINATED_REASON|flux_string }} and r.{{ m.KSM_REASON }} == "OOMKilled"
                        or
                        r._field == {{ m.KSM_LAST_TERMINATED_TIMESTAMP|flux_string }}),
        )
        |> last()
        |> keep(columns: ["_time", "_field", "_value", "cluster", "namespace", {{ m.KSM_POD|flux_string }}, {{ m.KSM_CONTAINER|flux_string }}])
        |> group()
        |> pivot(
            rowKey: ["_time", "cluster", "namespace", {{ m.KSM_POD|flux_string }}, {{ m.KSM_CONTAINER|flux_string }}],
            columnKey: ["_field"],
            valueColumn: "_value",
        )

killedAgo = (r) => nowSeconds - r.{{ m.KSM_LAST_TERMINATED_TIMESTAMP }}

// One row per container, with the columns the alert needs.
findings =
    latest
        |> filter(
            fn: (r) =>
                exists r.{{ m.KSM_LAST_TERMINATED_REASON }} and exists r.{{ m.KSM_LAST_TERMINATED_TIMESTAMP }}
                    and
                    killedAgo(r: r) <= windowSeconds,
        )
        |> map(
            fn: (r) =>
                ({
                    cluster: r.cluster,
                    namespace: r.namespace,
                    pod_name: r.{{ m.KSM_POD }},
                    container_name: r.{{ m.KSM_CONTAINER }},
                    minutes: killedAgo(r: r) / 60.0,
                }),
        )

value = (r) => r.minutes
problem = (r) =>
    " was killed for running out of memory (OOMKilled) ${string(v: int(v: r.minutes + 0.5))} minutes ago."
{% endblock %}
