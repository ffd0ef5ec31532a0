{% extends "_alert.flux" %}
{% block summary %}
// Check "restarts": a container's restart count went up within the last {{ window }}.
{% endblock %}
{% block findings %}
findings =
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(fn: (r) => r._measurement == "kubernetes_pod_container" and r._field == "restarts_total")
        // Only the columns used: after group() merges series whose tag columns differ (a tag
        // missing from one), sort() in Flux 0.196 panics or drops values.
        |> keep(columns: ["_time", "_value", "cluster", "namespace", "pod_name", "container_name"])
        // One table per container (the phase/state/readiness tags split a container's series).
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name"])
        |> sort(columns: ["_time"])
        // Add up the increases; a drop (a pod recreated under the same name) is not a restart.
        |> difference(nonNegative: true)
        |> sum()
        |> filter(fn: (r) => exists r._value and r._value > 0)
        |> map(
            fn: (r) =>
                ({r with
                    value: float(v: r._value),
                    message:
                        describe(r: r) + " restarted " + string(v: r._value)
                            + (if r._value == 1 then " time" else " times") + " in the last "
                            + windowText + ".",
                }),
        )
{% endblock %}
