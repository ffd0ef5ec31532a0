{% extends "_alert.flux" %}
{% block summary %}
// Check "cpu": a container whose mean CPU usage over the last {{ window }} is above
// {{ cpu_threshold|flux_float }}% of its CPU limit. Containers without a CPU limit are skipped.
{% endblock %}
{% block findings %}
threshold = {{ cpu_threshold|flux_float }}

// Usage (inputs.kubernetes) and limit (inputs.kube_inventory) come in series with different tags:
// average each per container (InfluxDB groups the series), then put them side by side, all
// containers in one table.
usage =
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == "kubernetes_pod_container"
                    and
                    (r._field == "cpu_usage_nanocores" or r._field == "resource_limits_millicpu_units"),
        )
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name", "_field"])
        |> mean()
        |> group()
        |> pivot(rowKey: ["cluster", "namespace", "pod_name", "container_name"], columnKey: ["_field"], valueColumn: "_value")

// nanocores / (millicores * 1e6) * 100
value = (r) => r.cpu_usage_nanocores / (r.resource_limits_millicpu_units * 10000.0)

findings =
    usage
        |> filter(
            fn: (r) =>
                exists r.cpu_usage_nanocores and exists r.resource_limits_millicpu_units
                    and
                    r.resource_limits_millicpu_units > 0.0 and value(r: r) > threshold,
        )

// A percentage with one decimal ("93.4"), the limit in whole millicores.
problem = (r) =>
    " used ${string(v: float(v: int(v: value(r: r) * 10.0 + 0.5)) / 10.0)}% of its CPU limit of ${string(v: int(v: r.resource_limits_millicpu_units + 0.5))}m on average over the last ${windowText}."
{% endblock %}
