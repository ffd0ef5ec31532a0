{% extends "_alert.flux" %}
{% block summary %}
// Check "memory": a container whose mean working-set memory over the last {{ window }} is above
// {{ memory_threshold|flux_float }}% of its memory limit (the working set, not memory_usage_bytes, which
// includes page cache the kernel reclaims before any OOM kill). Containers without a memory
// limit are skipped.
{% endblock %}
{% block findings %}
threshold = {{ memory_threshold|flux_float }}
mebibytes = (v) => string(v: int(v: v / 1048576.0 + 0.5))

findings =
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == "kubernetes_pod_container"
                    and
                    (r._field == "memory_working_set_bytes" or r._field == "resource_limits_memory_bytes"),
        )
        |> keep(
            columns: ["_time", "_field", "_value", "cluster", "namespace", "pod_name", "container_name"],
        )
        // Usage (inputs.kubernetes) and limit (inputs.kube_inventory) come in series with
        // different tags: average each per container, then put them side by side.
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name", "_field"])
        |> mean()
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name"])
        |> pivot(
            rowKey: ["cluster", "namespace", "pod_name", "container_name"],
            columnKey: ["_field"],
            valueColumn: "_value",
        )
        |> filter(
            fn: (r) =>
                exists r.memory_working_set_bytes and exists r.resource_limits_memory_bytes
                    and
                    r.resource_limits_memory_bytes > 0.0,
        )
        |> map(fn: (r) => ({r with value: r.memory_working_set_bytes / r.resource_limits_memory_bytes * 100.0}))
        |> filter(fn: (r) => r.value > threshold)
        |> map(
            fn: (r) =>
                ({r with
                    message:
                        describe(r: r) + " used " + oneDecimal(v: r.value) + "% of its memory limit ("
                            + mebibytes(v: r.memory_working_set_bytes) + " of "
                            + mebibytes(v: r.resource_limits_memory_bytes)
                            + " MiB) on average over the last " + windowText + ".",
                }),
        )
{% endblock %}
