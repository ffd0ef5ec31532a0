{% extends "_fleet_alert.flux" %}
{% block summary %}
// Check "tls_expiry": a certificate a site presents (each environment's fqdn) that expires
// within {{ tls_expiry_warning }} or has expired: Telegraf inputs.x509_cert, field expiry
// (seconds left), tags source and common_name, from the probe Telegraf in the toolkit's bucket
// {{ probes_bucket }}, tagged with the environment as cluster; latest point of the last {{ window }}.
{% endblock %}
{% block findings %}
warningSeconds = {{ tls_expiry_seconds }}

findings =
    from(bucket: {{ probes_bucket|flux_string }})
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == {{ m.X509_CERT|flux_string }} and r._field == {{ m.X509_EXPIRY|flux_string }}
                    and
                    // The clusters' control planes are check cert_expiry's.
                    r.{{ m.X509_SOURCE }} != {{ m.CONTROL_PLANE_SOURCE|flux_string }},
        )
        // Same columns in every table before group(), so sort() is safe (Flux 0.196).
        |> map(
            fn: (r) =>
                ({
                    _time: r._time,
                    _value: int(v: r._value),
                    source: orUnknown(v: r.source),
                    cluster: orUnknown(v: r.cluster),
                    common_name: orUnknown(v: r.common_name),
                }),
        )
        |> group(columns: ["source", "cluster", "common_name"])
        |> sort(columns: ["_time"])
        |> last()
        |> filter(fn: (r) => r._value < warningSeconds)
        |> map(
            fn: (r) => {
                days = r._value / 86400

                return {
                    cluster: r.cluster,
                    application: "site",
                    subject: r.source + "/" + r.common_name,
                    value: float(v: r._value) / 86400.0,
                    message:
                        "The certificate " + r.common_name + " of " + r.source + " (cluster "
                            + r.cluster + ") "
                            + (if r._value < 0 then
                                "expired " + string(v: -days) + " days ago."
                            else
                                "expires in " + string(v: days) + " days."),
                }
            },
        )
{% endblock %}
