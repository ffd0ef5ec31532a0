# The image the jobs of the Helm chart under cronjobs/ run. Build: docker build -t rubin-monitoring .
# It runs on a read-only root filesystem as user 1000: only /tmp (an emptyDir in the chart) is
# written, where the jobs fetch the configuration repository; HOME points there too.
FROM python:3.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.rst ./
COPY src ./src
COPY templates ./templates
COPY dashboards ./dashboards
RUN pip install --no-cache-dir . && rm -rf /src
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1
USER 1000:1000
WORKDIR /tmp
ENTRYPOINT []
