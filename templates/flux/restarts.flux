{% extends "_alert.flux" %}
{% block summary %}
// Check "restarts": a container's restart count went up within the last {{ window }}.
{% endblock %}
{% block findings %}
// The restart counter of each container, oldest first. Only the columns used: the
// phase/state/readiness tags split a container's series, and a merged table whose parts have
// different columns breaks sort() in Flux 0.196.
counters =
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(fn: (r) => r._measurement == {{ m.KUBERNETES_POD_CONTAINER|flux_string }} and r._field == {{ m.RESTARTS_TOTAL|flux_string }})
        |> keep(columns: ["_time", "_value", "cluster", "namespace", "pod_name", "container_name"])
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name"])
        |> sort(columns: ["_time"])

// Add up the increases; a drop (a pod recreated under the same name) is not a restart. Then one
// table, so the filter and the alert map run once.
findings =
    counters
        |> difference(nonNegative: true)
        |> sum()
        |> group()
        |> sort(columns: ["_value"])
        |> filter(fn: (r) => exists r._value and r._value > 0)

value = (r) => float(v: r._value)
problem = (r) =>
    " restarted ${string(v: r._value)} ${if r._value == 1 then "time" else "times"} in the last ${windowText}."
{% endblock %}
