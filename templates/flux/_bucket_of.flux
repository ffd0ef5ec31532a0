// The bucket of an application, by its name: "-" becomes "_" (as bucketmaker names buckets),
// for the inventory's applications whose name has one; any other name is its bucket's.
{% if aliases %}
bucketOf = (name) =>
{% for app, bucket in aliases %}
    {{ "if" if loop.first else "else if" }} name == {{ app|flux_string }} then
        {{ bucket|flux_string }}
{% endfor %}
    else
        name
{% else %}
bucketOf = (name) => name
{% endif %}
