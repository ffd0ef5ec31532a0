{% extends "_alert.flux" %}
{% block summary %}
// Check "not_running": a container whose latest state in the last {{ window }} is not running.
// Not reported: terminated with reason Completed (or a Succeeded pod), and containers starting
// (pod phase Pending, or waiting in ContainerCreating/PodInitializing) for less than
// {{ pending_grace }}. The run reads {{ lookback }} back to tell how long a container has been
// starting.
{% endblock %}
{% block findings %}
{#
  The verdict depends on a container's samples in time order: its latest sample, and when its
  current run of "starting" samples began. A running sample (state_code 0) is never a problem
  and ends any such run, so only the latest running sample of each container matters: read every
  sample that is not running (few), plus that one per container (InfluxDB picks it), instead of
  every sample.
#}
windowSeconds = {{ window_seconds }}
graceSeconds = {{ grace_seconds }}
secondsAgo = (t) => (int(v: now()) - int(v: t)) / 1000000000

// Every sample that is not running: state_code (int, always written) and state_reason (string,
// written only when the container has a reason).
notRunning =
    from(bucket: application)
        |> range(start: -{{ lookback }})
        |> filter(
            fn: (r) =>
                r._measurement == {{ m.KUBERNETES_POD_CONTAINER|flux_string }}
                    and
                    (r._field == {{ m.STATE_REASON|flux_string }} or r._field == {{ m.STATE_CODE|flux_string }} and r._value != 0),
        )

// The latest running sample of each container.
lastRunning =
    from(bucket: application)
        |> range(start: -{{ lookback }})
        |> filter(
            fn: (r) =>
                r._measurement == {{ m.KUBERNETES_POD_CONTAINER|flux_string }} and r._field == {{ m.STATE_CODE|flux_string }}
                    and
                    r._value == 0,
        )
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name"])
        |> last()

// One table per container (the phase/state/readiness tags split its series), one row per sample
// with state_code and state_reason side by side, oldest first. pivot() builds each table column
// by name, whatever columns its parts have.
samples =
    union(tables: [lastRunning, notRunning])
        |> fill(column: "phase", value: "unknown")
        |> fill(column: "state", value: "unknown")
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name", "_field"])
        |> pivot(rowKey: ["_time", "phase", "state"], columnKey: ["_field"], valueColumn: "_value")
        |> sort(columns: ["_time"])

// The latest sample, and when the container's current run of "starting" samples began. A row
// with only a reason (no state_code at that time) is not a sample.
step = (r, accumulator) => {
    reason = if exists r.{{ m.STATE_REASON }} and r.{{ m.STATE_REASON }} != "" then r.{{ m.STATE_REASON }} else "none"
    kind =
        if r.{{ m.STATE_CODE }} == 0 or r.phase == "Succeeded" or r.{{ m.STATE_CODE }} == 1 and reason == "Completed" then
            "ok"
        else if r.phase == "Pending" or reason == "ContainerCreating" or reason == "PodInitializing" then
            "starting"
        else
            "broken"

    return
        if not exists r.{{ m.STATE_CODE }} then
            accumulator
        else
            {
                latest: r._time,
                since: if kind == "starting" and accumulator.kind == "starting" then accumulator.since else r._time,
                kind: kind,
                code: r.{{ m.STATE_CODE }},
                state: r.state,
                // What the message shows in parentheses: the reason, else the pod phase.
                detail: if reason != "none" then reason else if r.phase != "unknown" then r.phase else r.state,
            }
}

// One row per container. The reduced tables all have the same columns, so the filter is
// compiled once; merging them into one table first would cost more.
findings =
    samples
        |> reduce(
            identity: {latest: time(v: 0), since: time(v: 0), kind: "ok", code: 0, state: "unknown", detail: "unknown"},
            fn: step,
        )
        |> filter(
            fn: (r) =>
                secondsAgo(t: r.latest) <= windowSeconds
                    and
                    (r.kind == "broken" or r.kind == "starting" and secondsAgo(t: r.since) >= graceSeconds),
        )

value = (r) => float(v: r.code)
problem = (r) =>
    if r.kind == "broken" then
        " is not running: ${r.state} (${r.detail})."
    else
        " has not started for ${string(v: secondsAgo(t: r.since) / 60)} minutes: ${r.state} (${r.detail})."
{% endblock %}
