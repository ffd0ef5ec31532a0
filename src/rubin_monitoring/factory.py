"""Builds every store, sender and job from the settings: the only place that wires things.

The CLI makes one :class:`Factory` per run, asks it for a job, runs the job, renders the result
and exits; it never builds a client itself. Clients are made on first use and closed with the
factory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient

from .config import InfluxDBSettings, Settings
from .durations import format_duration
from .exceptions import ConfigError
from .models.alerts import NotifierReport, Route
from .models.inventory import Inventory
from .services.buckets import BucketMaker
from .services.catalog import read_catalog
from .services.dashboards import DashboardMaker
from .services.dbrps import BucketMapper
from .services.heartbeat import heartbeat
from .services.inventory import read_inventory
from .services.lease import NOTIFIER, WRITERS, Lease
from .services.notifier import notifier_options, run_notifier
from .services.receiver import ReceiverConfig, render_receiver
from .services.receiver import check_options as check_receiver_options
from .services.remote_write import RemoteWriteConfig, render_remote_write
from .services.remote_write import check_options as check_remote_write_options
from .services.routes import Routing, load_routing
from .services.tasks import TaskHealth, TaskMaker, desired_tasks, task_health
from .services.telegraf import (
    TelegrafConfig,
    enabled_namespaces,
    find_environment,
    render_telegraf,
)
from .services.token_plan import environment_buckets
from .services.tokens import TokenMaker
from .storage.alerts import AlertStore, open_client
from .storage.authorizations import AuthorizationStore
from .storage.gitrepo import checkout
from .storage.heartbeat import HeartbeatPinger
from .storage.http import InfluxHTTP
from .storage.influxdb import InfluxDBStore
from .storage.leases import LeaseStore
from .storage.retry import Availability
from .storage.silences import SilenceStore
from .storage.slack import SlackWebhooks
from .storage.templates import TemplateStore, packaged_dashboards, read_templates


class Factory:
    """Builds what one run of one command needs from ``settings``; use it as a context
    manager so the clients it made are closed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http: InfluxHTTP | None = None
        self._client: InfluxDBClient | None = None
        self._inventory: Inventory | None = None
        self._availability: Availability | None = None

    def __enter__(self) -> Factory:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every client this factory made."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # Settings and inputs

    @property
    def influxdb(self) -> InfluxDBSettings:
        """The InfluxDB settings; commands that talk to InfluxDB always have them (validated at
        start)."""
        if self.settings.influxdb is None:
            raise ConfigError("INFLUXDB_URL (--influxdb-url) is not set")
        return self.settings.influxdb

    def inventory(self) -> Inventory:
        """The configuration repository's inventory, read once per run."""
        if self._inventory is None:
            repository = self.settings.repository
            with checkout(
                repository.repo, repository.ref, timeout_seconds=repository.timeout_seconds
            ) as root:
                self._inventory = read_inventory(root, max_file_bytes=repository.max_file_bytes)
        return self._inventory

    def routes(self) -> list[Route]:
        """The Slack routes (routes file, then the default webhook), checked before anything is
        read."""
        return list(self.routing().routes)

    def routing(self) -> Routing:
        """The Slack routes and the inhibition rules, checked before anything is read."""
        notifier = self.settings.notifier
        return load_routing(notifier.webhook_url, notifier.routes_file)

    # Stores and senders

    def availability(self) -> Availability:
        """How long InfluxDB has been failing, shared by every client of this run: the
        HTTP_RETRY_BUDGET bounds the whole run, not each client."""
        if self._availability is None:
            self._availability = Availability(self.influxdb.retry_budget_seconds)
        return self._availability

    def http(self) -> InfluxHTTP:
        """The one management-API client of this run, made on first use."""
        if self._http is None:
            influxdb = self.influxdb
            self._http = InfluxHTTP(
                influxdb.url,
                influxdb.token,
                timeout=influxdb.http_timeout,
                max_connections=self.settings.reconcile.concurrency + 2,
                availability=self.availability(),
            )
        return self._http

    def influxdb_store(self) -> InfluxDBStore:
        """The organization's buckets, DBRP mappings and tasks."""
        return InfluxDBStore(self.http(), self.influxdb.org)

    def authorization_store(self) -> AuthorizationStore:
        """Users, org ownership and tokens."""
        return AuthorizationStore(self.http())

    def flux_client(self) -> InfluxDBClient:
        """The one influxdb-client of this run (Flux queries and writes), made on first use."""
        if self._client is None:
            influxdb = self.influxdb
            self._client = open_client(
                influxdb.url, influxdb.token, influxdb.org, timeout=influxdb.http_timeout
            )
        return self._client

    def alert_store(self) -> AlertStore:
        """Findings in ``multiapp_`` and records in ``alerted_``, through influxdb-client."""
        return AlertStore(self.flux_client(), self.influxdb.org, availability=self.availability())

    def silence_store(self) -> SilenceStore:
        """Silences in ``silences_``, through influxdb-client."""
        return SilenceStore(self.flux_client(), self.influxdb.org, availability=self.availability())

    def template_store(self) -> TemplateStore:
        """The organization's template stacks, and template applies."""
        return TemplateStore(self.http(), lambda: self.influxdb_store().org_id)

    def slack_sender(self) -> SlackWebhooks:
        """The Slack webhook sender, paced and retried per webhook."""
        return SlackWebhooks(timeout=self.settings.notifier.slack_timeout)

    def lease(self, scope: str, job: str) -> Lease:
        """The lease ``job`` holds while it writes (``WRITERS`` or ``NOTIFIER``)."""
        settings = self.settings.lease
        return Lease(
            LeaseStore(self.influxdb_store()),
            scope,
            job,
            ttl_seconds=settings.ttl_seconds,
            wait_seconds=settings.wait_seconds,
        )

    def writers_lease(self, job: str) -> Lease:
        """The lease every writing job (bucketmaker, bucketmapper, taskmaker, tokenmaker) holds."""
        return self.lease(WRITERS, job)

    # Jobs

    def bucketmaker(self) -> BucketMaker:
        """bucketmaker for the repository's inventory and the bucket settings."""
        retention, shard = self.settings.bucket_retention, self.settings.bucket_shard_seconds
        if shard is not None and retention and shard > retention:
            raise ConfigError(
                f"BUCKET_SHARD_DURATION ({format_duration(shard)}) is longer than "
                f"BUCKET_RETENTION ({format_duration(retention)}): InfluxDB refuses it"
            )
        return BucketMaker(
            self.influxdb_store(),
            self.inventory(),
            self.settings.bucket_retention,
            recreate=self.settings.recreate_buckets,
            prune_max_share=self.settings.prune_max_share,
            shard_group_seconds=shard,
        )

    def bucketmapper(self) -> BucketMapper:
        """bucketmapper for the organization's owned buckets."""
        return BucketMapper(self.influxdb_store())

    def taskmaker(self) -> TaskMaker:
        """taskmaker with the tasks rendered for the inventory's buckets and the check settings."""
        inventory = self.inventory()
        desired = desired_tasks(inventory, self.settings.checks)
        held = inventory.held_buckets | inventory.held_environments
        return TaskMaker(self.influxdb_store(), desired, problems=inventory.problems, held=held)

    def task_health(self) -> TaskHealth:
        """The owned tasks whose last run failed."""
        return task_health(self.influxdb_store())

    def tokenmaker(self, *, bot_user: str, roles: Iterable[str], rotate: bool) -> TokenMaker:
        """tokenmaker for ``roles`` (all when empty), with ``bot_user`` owning the tasks, and one
        Telegraf role per environment of the repository."""
        return TokenMaker(
            self.influxdb_store(),
            self.authorization_store(),
            bot_user=bot_user,
            roles=roles,
            rotate=rotate,
            environments=environment_buckets(self.inventory()),
            stacks=self.template_store(),
            problems=self.inventory().problems,
        )

    def dashboardmaker(self) -> DashboardMaker:
        """dashboardmaker for the template files of DASHBOARDS_DIR (default: the packaged
        ``dashboards/``), read and checked before InfluxDB is asked."""
        directory = self.settings.dashboards_dir
        desired = read_templates(Path(directory) if directory else packaged_dashboards())
        return DashboardMaker(self.template_store(), desired)

    def telegraf_config(
        self,
        environment: str,
        *,
        output_format: str,
        namespace: str,
        image: str,
        secret_name: str,
    ) -> TelegrafConfig:
        """The Telegraf configuration (or manifests) of one environment's cluster, from the
        repository, the scrape catalog (shipped, and SCRAPE_CATALOG's) and
        INFLUXDB_URL/INFLUXDB_ORG; no token is read or written. The catalog is read and
        checked before the repository is fetched."""
        influxdb = self.influxdb
        catalog = read_catalog(self.settings.scrape_catalog)
        return render_telegraf(
            self.inventory(),
            environment,
            influxdb.url,
            influxdb.org,
            output_format=output_format,
            namespace=namespace,
            image=image,
            secret_name=secret_name,
            catalog=catalog,
        )

    def receiver_config(self, **options: Any) -> ReceiverConfig:
        """The remote-write receiver's configuration (or manifests) for every environment of
        the repository, writing into INFLUXDB_URL/INFLUXDB_ORG; no token is read or written.
        ``options`` are those of :func:`~.services.receiver.render_receiver`."""
        check_receiver_options(**options)
        influxdb = self.influxdb
        return render_receiver(self.inventory(), influxdb.url, influxdb.org, **options)

    def remote_write_config(
        self, environment: str, *, receiver_url: str, **options: Any
    ) -> RemoteWriteConfig:
        """The ``remote_write`` section of environment ``environment``'s Prometheus, writing
        to its listener of the receiver at ``receiver_url`` and forwarding what the checks and
        dashboards read: the scrape catalog (shipped, and SCRAPE_CATALOG's) is read and checked
        before the repository is fetched. ``options`` are those of
        :func:`~.services.remote_write.render_remote_write`."""
        check_remote_write_options(receiver_url=receiver_url, **options)
        catalog = read_catalog(self.settings.scrape_catalog)
        inventory = self.inventory()
        found = find_environment(inventory, environment)
        return render_remote_write(
            found.name,
            enabled_namespaces(found, inventory),
            receiver_url,
            catalog=catalog,
            **options,
        )

    def run_notifier(self) -> NotifierReport:
        """Run the notifier: routes are loaded (and checked) before InfluxDB is asked; unless
        dry-run, it holds the notifier lease, so two runs never send the same alert. Then, with
        ``HEARTBEAT_URL``, the heartbeat (see services/heartbeat.py)."""
        options = notifier_options(self.settings.notifier, dry_run=self.settings.dry_run)
        routing = self.routing()

        def run() -> NotifierReport:
            return run_notifier(
                self.alert_store(),
                self.slack_sender(),
                routing.routes,
                options,
                silences=self.silence_store(),
                inhibit_rules=routing.inhibit_rules,
            )

        if options.dry_run:
            report = run()
        else:
            with self.lease(NOTIFIER, "notifier"):
                report = run()
        url = self.settings.notifier.heartbeat_url
        if url:
            report.heartbeat = heartbeat(
                report, self.influxdb_store().list_tasks, HeartbeatPinger(url)
            )
        return report
