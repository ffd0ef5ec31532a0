{% extends "_alert.flux" %}
{% block summary %}
// Check "cpu": a container whose mean CPU usage over the last {{ window }} is above
// {{ cpu_threshold|flux_float }}% of its CPU limit. Containers without a CPU limit are skipped.
{% endblock %}
{% block findings %}
threshold = {{ cpu_threshold|flux_float }}

findings =
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == "kubernetes_pod_container"
                    and
                    (r._field == "cpu_usage_nanocores" or r._field == "resource_limits_millicpu_units"),
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
                exists r.cpu_usage_nanocores and exists r.resource_limits_millicpu_units
                    and
                    r.resource_limits_millicpu_units > 0.0,
        )
        // nanocores / (millicores * 1e6) * 100
        |> map(fn: (r) => ({r with value: r.cpu_usage_nanocores / (r.resource_limits_millicpu_units * 10000.0)}))
        |> filter(fn: (r) => r.value > threshold)
        |> map(
            fn: (r) =>
                ({r with
                    message:
                        describe(r: r) + " used " + oneDecimal(v: r.value) + "% of its CPU limit of "
                            + string(v: int(v: r.resource_limits_millicpu_units + 0.5))
                            + "m on average over the last " + windowText + ".",
                }),
        )
{% endblock %}
