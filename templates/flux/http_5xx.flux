{% extends "_fleet_alert.flux" %}
{% block summary %}
// Check "http_5xx": an Ingress that answered more than {{ http_5xx_threshold|flux_float }}% of its
// requests with a 5xx status in the last {{ window }}, among those that served at least
// {{ http_5xx_min_rate|flux_float }} requests per second on average over it (so a few errors at
// a quiet hour do not alert). One finding per Ingress, tagged with the bucket of its namespace's
// application.
//
// Input: ingress-nginx's controllers, scraped into the bucket {{ application }}: the counter
// {{ m.NGINX_REQUESTS }} (measurement {{ m.PROMETHEUS }}), one series per controller pod and
// label set (labels {{ m.NGINX_STATUS }}, {{ m.NGINX_INGRESS }}, and {{ m.NAMESPACE }}: the
// Ingress's), with the "cluster" tag.
{% endblock %}
{% block findings %}
{% include "_bucket_of.flux" %}

application = {{ application|flux_string }}
threshold = {{ http_5xx_threshold|flux_float }}
minimumRate = {{ http_5xx_min_rate|flux_float }}
windowSeconds = {{ window_seconds }}.0
windowText = {{ window|flux_string }}

// Requests per Ingress and status in the window: the sum of the counters' last values minus the
// sum of their first values in it (so each series counts what it served in the window; a
// counter reset in the window counts nothing for that series' group).
counters = (fn) =>
    from(bucket: application)
        |> range(start: -{{ window }})
        |> filter(fn: (r) => r._measurement == {{ m.PROMETHEUS|flux_string }} and r._field == {{ m.NGINX_REQUESTS|flux_string }})
        |> fn()
        |> group(columns: ["cluster", "namespace", {{ m.NGINX_INGRESS|flux_string }}, {{ m.NGINX_STATUS|flux_string }}])
        |> sum()
requests =
    union(
        tables: [
            counters(fn: (tables=<-) => tables |> first()) |> set(key: "end", value: "first"),
            counters(fn: (tables=<-) => tables |> last()) |> set(key: "end", value: "last"),
        ],
    )
        |> group()
        |> pivot(rowKey: ["cluster", "namespace", {{ m.NGINX_INGRESS|flux_string }}, {{ m.NGINX_STATUS|flux_string }}], columnKey: ["end"], valueColumn: "_value")
        |> map(
            fn: (r) =>
                ({
                    cluster: r.cluster,
                    namespace: r.namespace,
                    ingress: r.{{ m.NGINX_INGRESS }},
                    kind: if exists r.{{ m.NGINX_STATUS }} and r.{{ m.NGINX_STATUS }} =~ /^5/ then "errors" else "others",
                    _value: if r.last > r.first then r.last - r.first else 0.0,
                }),
        )
        // Per Ingress: errors and others side by side.
        |> group(columns: ["cluster", "namespace", "ingress", "kind"])
        |> sum()
        |> group()
        |> pivot(rowKey: ["cluster", "namespace", "ingress"], columnKey: ["kind"], valueColumn: "_value")
        |> map(
            fn: (r) => {
                errors = if exists r.errors then r.errors else 0.0
                total = errors + (if exists r.others then r.others else 0.0)

                return {
                    cluster: r.cluster,
                    namespace: r.namespace,
                    ingress: r.ingress,
                    errors: errors,
                    total: total,
                    share: if total > 0.0 then errors / total * 100.0 else 0.0,
                }
            },
        )

findings =
    requests
        |> filter(fn: (r) => r.total / windowSeconds >= minimumRate and r.share > threshold)
        |> map(
            fn: (r) => {
                namespace = orUnknown(v: r.namespace)
                ingress = orUnknown(v: r.ingress)
                app = bucketOf(name: namespace)

                return {
                    cluster: r.cluster,
                    application: app,
                    subject: namespace + "/" + ingress,
                    value: r.share,
                    message:
                        "Ingress " + ingress + " (namespace " + namespace + ") of application " + app
                            + " on cluster " + orUnknown(v: r.cluster) + " answered "
                            + oneDecimal(v: r.share) + "% of its " + string(v: int(v: r.total + 0.5))
                            + " requests with a 5xx status in the last " + windowText + " ("
                            + oneDecimal(v: r.total / windowSeconds) + " requests/s; threshold "
                            + oneDecimal(v: threshold) + "%).",
                }
            },
        )
{% endblock %}
