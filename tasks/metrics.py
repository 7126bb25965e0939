"""Worker metrics for Prometheus: Dramatiq's own middleware (messages, errors, durations,
in-progress) and the engine's counters (executions by type and outcome, email send and
generation times, automations taken back), in the worker processes' shared multiprocess
directory, exported by Dramatiq's exposition server on `WORKER_METRICS_PORT`."""

from __future__ import annotations

import os
from typing import Any

import dramatiq

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def install(broker: dramatiq.Broker, port: int) -> None:
    """Export the worker processes' metrics on `port`: Dramatiq's middleware, whose exposition
    server runs in a process of its own that Dramatiq forks from its main process."""
    os.environ["dramatiq_prom_port"] = str(port)  # noqa: SIM112 (the name Dramatiq reads)
    from dramatiq.middleware.prometheus import Prometheus

    class Exported(Prometheus):
        @property
        def forks(self) -> list[Any]:
            return [serve]

    broker.add_middleware(Exported())


def serve() -> None:
    """The exposition server's process: forked by Dramatiq's main process, which has not read
    the configuration, so the port is passed on here before Dramatiq's server starts."""
    from dotenv import load_dotenv

    load_dotenv(override=False)
    os.environ["dramatiq_prom_port"] = os.environ.get("WORKER_METRICS_PORT", "9191")  # noqa: SIM112
    from dramatiq.middleware import prometheus

    prometheus.HTTP_PORT = int(os.environ["dramatiq_prom_port"])  # noqa: SIM112
    prometheus._run_exposition_server()


class PrometheusObserver:
    """The engine's Observer, counting into prometheus_client metrics made on first use (after
    Dramatiq's middleware has pointed prometheus_client at the multiprocess directory)."""

    def __init__(self) -> None:
        self._made: dict[str, Any] | None = None

    def _metrics(self) -> dict[str, Any]:
        if self._made is None:
            import prometheus_client as prom

            self._made = {
                "executed": prom.Counter(
                    "journey_executions_total",
                    "Automation runs that ended, by type and outcome.",
                    ["type", "outcome"],
                ),
                "email": prom.Histogram(
                    "journey_email_send_seconds", "Time to hand one email over.", buckets=SECONDS
                ),
                "generation": prom.Histogram(
                    "journey_generation_seconds",
                    "Time to generate one deliverable.",
                    buckets=SECONDS,
                ),
                "taken_back": prom.Counter(
                    "journey_taken_back_total",
                    "Automations taken back from a dead worker, an expired lease, a restarted "
                    "broker, or handed back by a stopping worker.",
                    ["reason"],
                ),
            }
        return self._made

    def executed(self, type_: str, outcome: str) -> None:
        self._metrics()["executed"].labels(type_ or "unknown", str(outcome)).inc()

    def timed(self, what: str, seconds: float) -> None:
        metric = self._metrics().get(what)
        if metric is not None:
            metric.observe(seconds)

    def taken_back(self, reason: str, count: int) -> None:
        self._metrics()["taken_back"].labels(reason).inc(count)
