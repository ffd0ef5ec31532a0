{% extends "_alert.flux" %}
{% block summary %}
// Check "not_running": a container whose latest state in the last {{ window }} is not running.
// Not reported: terminated with reason Completed (or a Succeeded pod), and containers starting
// (pod phase Pending, or waiting in ContainerCreating/PodInitializing) for less than
// {{ pending_grace }}. The run reads {{ lookback }} back to tell how long a container has been
// starting.
{% endblock %}
{% block findings %}
windowSeconds = {{ window_seconds }}
graceSeconds = {{ grace_seconds }}
secondsAgo = (t) => (int(v: now()) - int(v: t)) / 1000000000
orNone = (v) => if exists v and v != "" then v else "none"

findings =
    from(bucket: application)
        |> range(start: -{{ lookback }})
        |> filter(
            fn: (r) =>
                r._measurement == "kubernetes_pod_container"
                    and
                    (r._field == "state_code" or r._field == "state_reason"),
        )
        |> keep(
            columns: [
                "_time",
                "_field",
                "_value",
                "cluster",
                "namespace",
                "pod_name",
                "container_name",
                "phase",
                "state",
            ],
        )
        // One row per sample: state_code (int, always written) beside state_reason (string,
        // written only when the container has a reason).
        |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
        |> filter(fn: (r) => exists r.state_code)
        // The same columns in every table, and no empty strings: Flux 0.196's sort() drops or
        // nulls values of a merged table whose string column is missing or all "" in one part.
        |> map(
            fn: (r) => {
                phase = orUnknown(v: r.phase)
                reason = orNone(v: r.state_reason)
                ok = r.state_code == 0 or phase == "Succeeded" or r.state_code == 1 and reason == "Completed"
                starting = phase == "Pending" or reason == "ContainerCreating" or reason == "PodInitializing"

                return {
                    _time: r._time,
                    cluster: orUnknown(v: r.cluster),
                    namespace: orUnknown(v: r.namespace),
                    pod_name: orUnknown(v: r.pod_name),
                    container_name: orUnknown(v: r.container_name),
                    code: r.state_code,
                    state: orUnknown(v: r.state),
                    phase: phase,
                    reason: reason,
                    broken: not ok and not starting,
                    pending: not ok and starting,
                }
            },
        )
        // One table per container (the phase/state/readiness tags split a container's series).
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name"])
        |> sort(columns: ["_time"])
        // The latest sample, and when the container's current run of "starting" samples began.
        |> reduce(
            identity: {
                latest: time(v: 0),
                code: 0,
                state: "unknown",
                phase: "unknown",
                reason: "none",
                broken: false,
                pending: false,
                since: time(v: 0),
            },
            fn: (r, accumulator) =>
                ({
                    latest: r._time,
                    code: r.code,
                    state: r.state,
                    phase: r.phase,
                    reason: r.reason,
                    broken: r.broken,
                    pending: r.pending,
                    since: if r.pending and accumulator.pending then accumulator.since else r._time,
                }),
        )
        |> filter(
            fn: (r) =>
                secondsAgo(t: r.latest) <= windowSeconds
                    and
                    (r.broken or r.pending and secondsAgo(t: r.since) >= graceSeconds),
        )
        |> map(
            fn: (r) => {
                detail =
                    if r.reason != "none" then
                        r.reason
                    else if r.phase != "unknown" then
                        r.phase
                    else
                        r.state
                problem =
                    if r.broken then
                        " is not running: " + r.state + " (" + detail + ")."
                    else
                        " has not started for " + string(v: secondsAgo(t: r.since) / 60)
                            + " minutes: " + r.state + " (" + detail + ")."

                return {r with value: float(v: r.code), message: describe(r: r) + problem}
            },
        )
{% endblock %}
