{% extends "_fleet_alert.flux" %}
{% block summary %}
// Check "cert_expiry": a certificate of a cluster that expires within {{ cert_expiry_warning }}
// (or has expired), at its latest point in the last {{ window }}:
{% if cert_manager_bucket %}
// - each cert-manager Certificate, from cert-manager's controller scraped into the bucket
//   {{ cert_manager_bucket }} ({{ m.CERTMANAGER_EXPIRATION }}, measurement {{ m.PROMETHEUS }};
//   labels {{ m.CERTMANAGER_CERTIFICATE }} and {{ m.NAMESPACE }}, the Certificate's), and one that
//   was not Ready during the whole window ({{ m.CERTMANAGER_READY_STATUS }} with
//   {{ m.CERTMANAGER_CONDITION }} True never 1), tagged with the bucket of its namespace's
//   application;
{% endif %}
// - each cluster's control-plane certificate, which that cluster's Telegraf reads at
//   {{ m.CONTROL_PLANE_SOURCE }} ({{ m.X509_CERT }} field {{ m.X509_EXPIRY }}: seconds left) into
//   the toolkit's bucket {{ probes_bucket }}, tagged application "kubernetes".
{% endblock %}
{% block findings %}
{% include "_bucket_of.flux" %}

warningSeconds = {{ cert_expiry_seconds }}
nowSeconds = int(v: now()) / 1000000000

// Seconds as days (two or more) or hours.
inTime = (seconds) =>
    if seconds >= 172800 then string(v: seconds / 86400) + " days" else string(v: seconds / 3600) + " hours"
expiryText = (seconds) =>
    if seconds < 0 then "expired " + inTime(seconds: -seconds) + " ago" else "expires in " + inTime(seconds: seconds)

// The control plane: the latest point of each cluster (a renewed certificate is a new series).
controlPlane =
    from(bucket: {{ probes_bucket|flux_string }})
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == {{ m.X509_CERT|flux_string }} and r._field == {{ m.X509_EXPIRY|flux_string }}
                    and
                    r.{{ m.X509_SOURCE }} == {{ m.CONTROL_PLANE_SOURCE|flux_string }},
        )
        |> last()
        // Every table has these columns, in this order, so sort() is safe (Flux 0.196).
        |> keep(columns: ["_time", "_value", "cluster"])
        |> group(columns: ["cluster"])
        |> sort(columns: ["_time"])
        |> last()
        |> group()
        |> filter(fn: (r) => r._value < warningSeconds)
        |> map(
            fn: (r) => {
                seconds = int(v: r._value)

                return {
                    cluster: r.cluster,
                    application: "kubernetes",
                    subject: "control-plane",
                    value: float(v: seconds) / 86400.0,
                    message:
                        "The control plane's certificate ({{ m.CONTROL_PLANE_SOURCE }}) of cluster "
                            + orUnknown(v: r.cluster) + " " + expiryText(seconds: seconds) + ".",
                }
            },
        )
{% if cert_manager_bucket %}

// cert-manager: each Certificate's expiry time (latest point) and whether it was Ready at any
// point of the window, side by side.
expiries =
    from(bucket: {{ cert_manager_bucket|flux_string }})
        |> range(start: -{{ window }})
        |> filter(fn: (r) => r._measurement == {{ m.PROMETHEUS|flux_string }} and r._field == {{ m.CERTMANAGER_EXPIRATION|flux_string }})
        |> last()
readiness =
    from(bucket: {{ cert_manager_bucket|flux_string }})
        |> range(start: -{{ window }})
        |> filter(
            fn: (r) =>
                r._measurement == {{ m.PROMETHEUS|flux_string }} and r._field == {{ m.CERTMANAGER_READY_STATUS|flux_string }}
                    and
                    r.{{ m.CERTMANAGER_CONDITION }} == "True",
        )
        |> max()
certificates =
    union(tables: [expiries, readiness])
        |> keep(columns: ["_field", "_value", "cluster", "namespace", {{ m.CERTMANAGER_CERTIFICATE|flux_string }}])
        |> group()
        |> pivot(rowKey: ["cluster", "namespace", {{ m.CERTMANAGER_CERTIFICATE|flux_string }}], columnKey: ["_field"], valueColumn: "_value")

certificateFinding = (r, subject, value, problem) => {
    namespace = orUnknown(v: r.namespace)
    name = orUnknown(v: r.{{ m.CERTMANAGER_CERTIFICATE }})
    app = bucketOf(name: namespace)

    return {
        cluster: r.cluster,
        application: app,
        subject: namespace + "/" + name + "/" + subject,
        value: value,
        message:
            "Certificate " + name + " (namespace " + namespace + ") of application " + app
                + " on cluster " + orUnknown(v: r.cluster) + " " + problem + ".",
    }
}

// Issued (an expiry time above 0) and expiring.
expiring =
    certificates
        |> filter(
            fn: (r) =>
                exists r.{{ m.CERTMANAGER_EXPIRATION }} and r.{{ m.CERTMANAGER_EXPIRATION }} > 0.0
                    and
                    int(v: r.{{ m.CERTMANAGER_EXPIRATION }}) - nowSeconds < warningSeconds,
        )
        |> map(
            fn: (r) => {
                seconds = int(v: r.{{ m.CERTMANAGER_EXPIRATION }}) - nowSeconds

                return certificateFinding(
                    r: r,
                    subject: "expiry",
                    value: float(v: seconds) / 86400.0,
                    problem: expiryText(seconds: seconds),
                )
            },
        )

notReady =
    certificates
        |> filter(fn: (r) => exists r.{{ m.CERTMANAGER_READY_STATUS }} and r.{{ m.CERTMANAGER_READY_STATUS }} < 1.0)
        |> map(
            fn: (r) =>
                certificateFinding(r: r, subject: "ready", value: 0.0, problem: "has not been Ready in the last {{ window }}"),
        )

findings = union(tables: [controlPlane, expiring, notReady])
{% else %}

findings = controlPlane
{% endif %}
{% endblock %}
