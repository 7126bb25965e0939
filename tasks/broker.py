"""Choose the broker once per process: Redis when REDIS_URL is set, else an in-process one; and
read what the broker itself knows (queue lengths, its epoch, a dead worker's messages)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from periodiq import PeriodiqMiddleware

from tasks.watch import Watch

log = logging.getLogger(__name__)

_configured: str | None = None


class PatientRedisBroker(RedisBroker):
    """The scheduler process's broker: a send waits out a Redis outage of any length (retrying
    with backoff, logging once per outage) instead of raising, which would end periodiq. A
    periodic message sent after an outage carries the moment it finally left, so the sweep
    missed during the outage is made up once, as soon as Redis is back."""

    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        pause, down_since = 0.5, None
        while True:
            try:
                sent = super().enqueue(message, delay=delay)
            except redis.RedisError as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    log.error("Redis is unreachable (%s): waiting for it to come back", exc)
                time.sleep(pause)
                pause = min(pause * 2, 10.0)
                if "scheduled_at" in message.options:
                    now = datetime.now(UTC).isoformat()
                    message = message.copy(options={"scheduled_at": now})
                continue
            if down_since is not None:
                log.warning("Redis is back after %.0f s", time.monotonic() - down_since)
            return sent


def setup(redis_url: str | None, *, patient: bool = False) -> dramatiq.Broker:
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
        broker = (PatientRedisBroker if patient else RedisBroker)(url=redis_url)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(PeriodiqMiddleware(skip_delay=30))
    broker.add_middleware(Watch())
    dramatiq.set_broker(broker)
    _configured = wanted
    return broker


def require() -> dramatiq.Broker:
    """The broker `setup` installed; declaring actors on any other would lose them."""
    if _configured is None:
        raise RuntimeError("tasks.broker.setup() must run (create_app does) before tasks.actors")
    return dramatiq.get_broker()


def identity() -> str | None:
    """This process's id at the broker (Redis keeps a worker's taken messages under it)."""
    current = dramatiq.get_broker()
    return current.broker_id if isinstance(current, RedisBroker) else None


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


def epoch() -> str | None:
    """What changes whenever Redis may have lost messages: its run id (a restart loses what it
    held without persistence) and its count of evicted keys (an eviction policy drops keys,
    messages among them, when memory runs short). None for the in-process broker."""
    current = require()
    if isinstance(current, RedisBroker):
        info = current.client.info()
        return f"{info['run_id']}:{info.get('evicted_keys', 0)}"
    return None


def eviction_policy() -> str | None:
    """Redis's `maxmemory-policy` (anything but noeviction may drop messages silently)."""
    current = require()
    if not isinstance(current, RedisBroker):
        return None
    try:
        return str(current.client.config_get("maxmemory-policy")["maxmemory-policy"])
    except redis.ResponseError:  # CONFIG is disabled on some hosted Redis: INFO says it too
        return str(current.client.info("memory").get("maxmemory_policy"))


def silent(seconds: float) -> list[str]:
    """Consumers whose last heartbeat in Redis (written at every fetch, by each worker process)
    is older than `seconds`. Dramatiq's own maintenance forgets them after a minute."""
    current = require()
    if not isinstance(current, RedisBroker):
        return []
    cutoff = int((time.time() - seconds) * 1000)
    found = current.client.zrangebyscore(f"{current.namespace}:__heartbeats__", 0, cutoff)
    return [w.decode() if isinstance(w, bytes) else str(w) for w in found]


def taken_by(workers: Sequence[str]) -> Iterator[Message]:
    """The messages the given workers had taken from Redis and not acknowledged (prefetched,
    delayed or running when they died), each removed from Redis as it is read: a dead worker's
    messages are taken back by the engine, not requeued by Dramatiq's own maintenance later."""
    current = require()
    if not isinstance(current, RedisBroker) or not workers:
        return
    client: Any = current.client
    ns = current.namespace
    queues = {q for base in current.get_declared_queues() for q in (base, f"{base}.DQ")}
    for worker in workers:
        for queue in sorted(queues):
            acks = f"{ns}:__acks__.{worker}.{queue}"
            ids = sorted(client.smembers(acks))
            if not ids:
                continue
            data = client.hmget(f"{ns}:{queue}.msgs", ids)
            with client.pipeline() as pipe:
                pipe.delete(acks)
                pipe.hdel(f"{ns}:{queue}.msgs", *ids)
                pipe.execute()
            for raw in data:
                if raw is not None:
                    yield Message.decode(raw)
