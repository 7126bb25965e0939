"""Choose the broker once per process: Redis when REDIS_URL is set, else an in-process one."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from periodiq import PeriodiqMiddleware

_configured: str | None = None


def setup(redis_url: str | None) -> dramatiq.Broker:
    """Install the process's broker (idempotent for the same URL)."""
    global _configured
    wanted = redis_url or "stub"
    if _configured is not None:
        if _configured != wanted:
            raise RuntimeError(
                f"this process already uses broker {_configured!r}; cannot switch to {wanted!r}"
            )
        return dramatiq.get_broker()
    broker: dramatiq.Broker
    if redis_url:
        broker = RedisBroker(url=redis_url)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(PeriodiqMiddleware(skip_delay=30))
    dramatiq.set_broker(broker)
    _configured = wanted
    return broker


def ready(queue_name: str) -> int:
    """Messages in `queue_name` that are due and not yet taken by a worker (delayed messages
    wait elsewhere: in the delay queue, then in a worker's memory until their time)."""
    current = require()
    if isinstance(current, RedisBroker):
        return int(current.client.llen(f"{current.namespace}:{queue_name}"))
    if isinstance(current, StubBroker):
        queue = current.queues.get(queue_name)
        return queue.qsize() if queue is not None else 0
    return 0


def require() -> dramatiq.Broker:
    """The broker `setup` installed; declaring actors on any other would lose them."""
    if _configured is None:
        raise RuntimeError("tasks.broker.setup() must run (create_app does) before tasks.actors")
    return dramatiq.get_broker()
