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
                r._measurement == {{ m.KUBERNETES_POD_CONTAINER|flux_string }}
                    and
                    (r._field == {{ m.CPU_USAGE_NANOCORES|flux_string }} or r._field == {{ m.RESOURCE_LIMITS_MILLICPU_UNITS|flux_string }}),
        )
        |> group(columns: ["cluster", "namespace", "pod_name", "container_name", "_field"])
        |> mean()
        |> group()
        |> pivot(rowKey: ["cluster", "namespace", "pod_name", "container_name"], columnKey: ["_field"], valueColumn: "_value")

// nanocores / (millicores * 1e6) * 100
value = (r) => r.{{ m.CPU_USAGE_NANOCORES }} / (r.{{ m.RESOURCE_LIMITS_MILLICPU_UNITS }} * 10000.0)

findings =
    usage
        |> filter(
            fn: (r) =>
                exists r.{{ m.CPU_USAGE_NANOCORES }} and exists r.{{ m.RESOURCE_LIMITS_MILLICPU_UNITS }}
                    and
                    r.{{ m.RESOURCE_LIMITS_MILLICPU_UNITS }} > 0.0 and value(r: r) > threshold,
        )

// A percentage with one decimal ("93.4"), the limit in whole millicores.
problem = (r) =>
    " used ${string(v: float(v: int(v: value(r: r) * 10.0 + 0.5)) / 10.0)}% of its CPU limit of ${string(v: int(v: r.{{ m.RESOURCE_LIMITS_MILLICPU_UNITS }} + 0.5))}m on average over the last ${windowText}."
{% endblock %}
