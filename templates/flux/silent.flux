{% extends "_fleet_alert.flux" %}
{% block summary %}
// Check "silent": the applications the inventory enables in environment {{ cluster }} whose
// bucket received no point tagged cluster={{ cluster }} in the last {{ silent_after }}. When none
// of them did, one finding for the whole cluster instead of one per application.
{% endblock %}
{% block findings %}
{% macro reported(bucket) -%}
from(bucket: {{ bucket|flux_string }})
            |> range(start: -{{ silent_after }})
            |> filter(fn: (r) => r.cluster == cluster)
            |> first()
            |> keep(columns: ["_time"])
            |> group()
            |> limit(n: 1)
            // The row must use r: a map() to constants alone yields no rows (Flux 0.196).
            |> map(fn: (r) => ({_time: r._time, bucket: {{ bucket|flux_string }}}))
{%- endmacro %}
cluster = {{ cluster|flux_string }}
silentText = {{ silent_after|flux_string }}
// The buckets of the applications the inventory enables in this environment.
expected = [{% for bucket in buckets %}{{ bucket|flux_string }}{{ ", " if not loop.last }}{% endfor %}]

// The expected buckets that received a point from this cluster.
reporting =
{% if buckets|length == 1 %}
    {{ reported(buckets[0]) }}
{% else %}
    union(
        tables: [
{% for bucket in buckets %}
            {{ reported(bucket) }},
{% endfor %}
        ],
    )
{% endif %}
        |> findColumn(fn: (key) => true, column: "bucket")

allSilent = length(arr: reporting) == 0

// One row per expected bucket that exists and did not report (buckets() lists the org's).
silentBuckets =
    buckets()
        |> filter(
            fn: (r) =>
                contains(value: r.name, set: expected) and not contains(value: r.name, set: reporting),
        )
        |> keep(columns: ["name"])

perApplication =
    silentBuckets
        |> filter(fn: (r) => not allSilent)
        |> map(
            fn: (r) =>
                ({
                    name: r.name,
                    cluster: cluster,
                    application: r.name,
                    subject: "bucket",
                    value: {{ silent_seconds|flux_float }},
                    message:
                        "Application " + r.name + " sent no data from cluster " + cluster
                            + " in the last " + silentText
                            + ", although the inventory enables it there.",
                }),
        )

wholeCluster =
    silentBuckets
        |> filter(fn: (r) => allSilent)
        |> limit(n: 1)
        |> map(
            fn: (r) =>
                ({
                    name: r.name,
                    cluster: cluster,
                    application: "all",
                    subject: "cluster",
                    value: float(v: length(arr: expected)),
                    message:
                        "Cluster " + cluster + " sent no data for any of its "
                            + string(v: length(arr: expected)) + " applications in the last "
                            + silentText + ".",
                }),
        )

findings = union(tables: [perApplication, wholeCluster])
{% endblock %}
