"""What the engine's throughput is measured against, in the same run on the same machine:
Dramatiq moving no-op messages with the engine's processes and threads, and PostgreSQL
committing single-row inserts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from dramatiq import Message

from tests.bench.common import drop_schema, fresh_schema, schema_url
from tests.cluster import ROOT, RedisServer, wait_for


def noop_throughput(processes: int, threads: int, messages: int = 20_000) -> float:
    """No-op messages per second through Redis, with `processes` x `threads` workers."""
    server = RedisServer()
    server.start()
    client = redis.Redis.from_url(server.url)
    env = os.environ | {"REDIS_URL": server.url, "dramatiq_worker_timeout": "100"}
    workers = None
    try:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=server.url)
        broker.declare_queue("noop")
        for i in range(messages):
            broker.enqueue(Message("noop", "noop", (i,), {}, {}))
        workers = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dramatiq",
                "tests.bench.noop",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: int(client.get("bench:noop:done") or 0) > 0, 60, "the no-op workers")
        started, first = time.perf_counter(), int(client.get("bench:noop:done") or 0)
        wait_for(lambda: int(client.get("bench:noop:done") or 0) >= messages, 300, "no-ops")
        return (messages - first) / (time.perf_counter() - started)
    finally:
        if workers is not None:
            os.killpg(workers.pid, 9)
            workers.wait()
        server.kill()


def commit_rate(clients: int = 8, seconds: int = 5) -> float | None:
    """PostgreSQL's single-row insert commits per second (pgbench), or None without pgbench."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        return None
    schema, url = fresh_schema("commits")
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_commits (id bigserial PRIMARY KEY, x int)"))
        engine.dispose()
        script = Path(tempfile.mkdtemp()) / "insert.sql"
        script.write_text("INSERT INTO bench_commits (x) VALUES (1);\n")
        libpq = schema_url(schema).replace("postgresql+psycopg://", "postgresql://", 1)
        out = subprocess.run(
            [
                pgbench,
                "-n",
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(seconds),
                "-f",
                str(script),
                libpq,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = re.search(r"tps = ([0-9.]+)", out)
        return float(found.group(1)) if found else None
    finally:
        drop_schema(schema)
