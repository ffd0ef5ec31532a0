{% extends "_fleet_alert.flux" %}
{% block summary %}
// Check "site_down": a site (each environment's fqdn) whose latest probe in the last {{ window }}
// did not answer successfully: no answer (Telegraf inputs.http_response result_code other than
// 0, tag result) or a 4xx/5xx status (tag status_code), from the probe Telegraf in the toolkit's
// bucket {{ probes_bucket }}, tagged with the environment as cluster.
{% endblock %}
{% block findings %}
findings =
    from(bucket: {{ probes_bucket|flux_string }})
        |> range(start: -{{ window }})
        |> filter(fn: (r) => r._measurement == {{ m.HTTP_RESPONSE|flux_string }} and r._field == {{ m.HTTP_RESULT_CODE|flux_string }})
        // Same columns in every table before group(), so sort() is safe (Flux 0.196).
        |> map(
            fn: (r) =>
                ({
                    _time: r._time,
                    _value: int(v: r._value),
                    server: orUnknown(v: r.server),
                    cluster: orUnknown(v: r.cluster),
                    result: orUnknown(v: r.result),
                    status: if exists r.status_code then r.status_code else "",
                }),
        )
        |> group(columns: ["server", "cluster"])
        |> sort(columns: ["_time"])
        |> last()
        |> filter(fn: (r) => r._value != 0 or (r.status != "" and int(v: r.status) >= 400))
        |> map(
            fn: (r) =>
                ({
                    cluster: r.cluster,
                    application: "site",
                    subject: r.server,
                    value: if r.status != "" then float(v: int(v: r.status)) else -1.0,
                    message:
                        "Site " + r.server + " of cluster " + r.cluster
                            + " does not answer successfully: "
                            + (if r._value != 0 then r.result else "HTTP status " + r.status)
                            + ".",
                }),
        )
{% endblock %}
