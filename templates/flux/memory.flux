{% extends "_alert.flux" %}
{% block summary %}
// Check "memory": a container whose mean working-set memory over the last {{ window }} is above
// {{ memory_threshold|flux_float }}% of its memory limit (the working set, not memory_usage_bytes, which
// includes page cache the kernel reclaims before any OOM kill). Containers without a memory
// limit are skipped.
{% endblock %}
{% block findings %}
threshold = {{ memory_threshold|flux_float }}

// Usage (inputs.kubernetes) and limit (inputs.kube_inventory) come in series with different tags:
// average each per container (InfluxDB groups the series), then put them side by side, all
// containers in one table.
usage =
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == {{ m.KUBERNETES_POD_CONTAINER|flux_string }}
                    and
                    (r._field == {{ m.MEMORY_WORKING_SET_BYTES|flux_string }} or r._field == {{ m.RESOURCE_LIMITS_MEMORY_BYTES|flux_string }}),
        )
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name", "_field"])
        |> mean()
        |> group()
        |> pivot(rowKey: ["cluster", "namespace", "pod_name", "container_name"], columnKey: ["_field"], valueColumn: "_value")

value = (r) => r.{{ m.MEMORY_WORKING_SET_BYTES }} / r.{{ m.RESOURCE_LIMITS_MEMORY_BYTES }} * 100.0

findings =
    usage
        |> filter(
            fn: (r) =>
                exists r.{{ m.MEMORY_WORKING_SET_BYTES }} and exists r.{{ m.RESOURCE_LIMITS_MEMORY_BYTES }}
                    and
                    r.{{ m.RESOURCE_LIMITS_MEMORY_BYTES }} > 0.0 and value(r: r) > threshold,
        )

// A percentage with one decimal ("93.4"), sizes in whole MiB.
mebibytes = (v) => string(v: int(v: v / 1048576.0 + 0.5))
problem = (r) =>
    " used ${string(v: float(v: int(v: value(r: r) * 10.0 + 0.5)) / 10.0)}% of its memory limit (${mebibytes(v: r.{{ m.MEMORY_WORKING_SET_BYTES }})} of ${mebibytes(v: r.{{ m.RESOURCE_LIMITS_MEMORY_BYTES }})} MiB) on average over the last ${windowText}."
{% endblock %}
