# The image the CronJobs under cronjobs/ run. Build: docker build -t rubin-monitoring .
FROM python:3.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.rst ./
COPY src ./src
COPY templates ./templates
COPY dashboards ./dashboards
RUN pip install --no-cache-dir . && rm -rf /src
USER 1000:1000
WORKDIR /tmp
ENTRYPOINT []
