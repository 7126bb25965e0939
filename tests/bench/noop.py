"""The ceiling: a Dramatiq actor that does nothing but count, for `dramatiq tests.bench.noop`
with the engine's processes and threads, on a Redis of its own (REDIS_URL)."""

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["REDIS_URL"])
dramatiq.set_broker(broker)
DONE = "bench:noop:done"


@dramatiq.actor(queue_name="noop", max_retries=0)
def noop(i: int) -> None:
    broker.client.incr(DONE)
