option task = {name: {{ task_name|flux_string }}, every: {{ every }}, offset: {{ offset }}}

// Rendered by rubin-monitoring from templates/flux/{{ check }}.flux: change the template, not
// this task (taskmaker replaces a task whose script differs from the rendered one).
//
{% block summary %}{% endblock %}
//
{% block input %}
// Input: Telegraf's kubernetes_pod_container measurement in the application's bucket, written by
// inputs.kube_inventory (restarts_total, state_code, state_reason; tags phase, state, readiness;
// resource limits) and inputs.kubernetes (cpu_usage_nanocores, memory_working_set_bytes), with a
// per-cluster "cluster" tag from Telegraf's global tags.
{% endblock %}
// Output: one point per problem in the alert bucket: measurement "alert", tags check,
// application, cluster, severity, dedup_key, fields message (string) and value (float), at the
// run's now().
{#
  Cost: every check runs once per application and interval, so a run's fixed cost counts as much
  as its data. What influxd spends per run (measured with bench/checkcycle.py):
  * every pipeline step and every function is analysed, planned and set up on each run: keep
    scripts short, use few steps;
  * a function given to map(), filter() or reduce() is compiled for each table it sees and called
    once per row, building a record each time: reduce tables and rows with native steps (pushed-down
    filters, group(), last(), mean(), pivot()) before any of them, and merge the survivors into
    one table (group() followed by sort() or pivot()) first;
  * Flux 0.196's sort() and reduce() read a merged table with the column layout of its first part:
    merge only tables with the same columns, in the same order, or merge with pivot(), which
    builds its table column by name.
#}

application = {{ application|flux_string }}
alertBucket = {{ alert_bucket|flux_string }}
checkName = {{ check|flux_string }}
severity = {{ severity|flux_string }}
windowText = {{ window|flux_string }}

// findings: one row per problem with the columns cluster, namespace, pod_name, container_name
// (a tag Telegraf did not set is null or missing), and whatever value(r) and problem(r), the end of
// the message, read.

{% block findings %}{% endblock %}
{% if ignored_pods %}

// Pods this check never reports here (IGNORE_PODS).
ignored = (r) =>
    exists r.pod_name and ({% for pattern in ignored_pods %}r.pod_name =~ /{{ pattern }}/{{ " or " if not loop.last }}{% endfor %})
{% endif %}

findings
{% if ignored_pods %}
    |> filter(fn: (r) => not ignored(r))
{% endif %}
    |> map(
        fn: (r) => {
            // "unknown" for a tag Telegraf did not set (an empty tag cannot be written).
            cluster = if exists r.cluster then r.cluster else "unknown"
            namespace = if exists r.namespace then r.namespace else "unknown"
            pod = if exists r.pod_name then r.pod_name else "unknown"
            container = if exists r.container_name then r.container_name else "unknown"

            return {
                _time: now(),
                _measurement: "alert",
                check: checkName,
                application: application,
                cluster: cluster,
                severity: severity,
                dedup_key: "${checkName}/${cluster}/${application}/${namespace}/${pod}/${container}",
                message:
                    "Container ${container} of pod ${pod} (namespace ${namespace}) of application ${application} on cluster ${cluster}${problem(r: r)}",
                value: value(r: r),
            }
        },
    )
    |> to(
        bucket: alertBucket,
        tagColumns: ["check", "application", "cluster", "severity", "dedup_key"],
        fieldFn: (r) => ({message: r.message, value: r.value}),
    )
