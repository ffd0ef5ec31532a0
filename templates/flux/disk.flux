{% extends "_fleet_alert.flux" %}
{% block summary %}
// Check "disk": a disk of the InfluxDB host more than {{ disk_threshold|flux_float }}% full, from
// the host's Telegraf (inputs.disk: field used_percent, tags host and path) in the toolkit's
// bucket {{ host_bucket }}, latest point of the last {{ window }}.
{% endblock %}
{% block findings %}
threshold = {{ disk_threshold|flux_float }}

findings =
    from(bucket: {{ host_bucket|flux_string }})
        |> range(start: -{{ window }})
        |> filter(fn: (r) => r._measurement == {{ m.DISK|flux_string }} and r._field == {{ m.DISK_USED_PERCENT|flux_string }})
        // Same columns in every table before group(), so sort() is safe (Flux 0.196).
        |> map(
            fn: (r) =>
                ({_time: r._time, _value: float(v: r._value), host: orUnknown(v: r.host),
                    path: orUnknown(v: r.path)}),
        )
        |> group(columns: ["host", "path"])
        |> sort(columns: ["_time"])
        |> last()
        |> filter(fn: (r) => r._value > threshold)
        |> map(
            fn: (r) =>
                ({
                    cluster: r.host,
                    application: "influxdb",
                    subject: r.path,
                    value: r._value,
                    message:
                        "Disk " + r.path + " of the InfluxDB host " + r.host + " is "
                            + oneDecimal(v: r._value) + "% full (threshold "
                            + oneDecimal(v: threshold) + "%).",
                }),
        )
{% endblock %}
