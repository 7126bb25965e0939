"""Real processes for the fault tests: a Redis server of our own, Dramatiq workers, a sweeper,
an SMTP sink, and a TCP proxy in front of PostgreSQL that can refuse connections."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


class RedisServer:
    """redis-server on a free port, no persistence: a restart loses everything."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.options: list[str] = []  # more redis-server options, e.g. a memory limit

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.binary
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, 10, "redis-server")

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
            self.process = None


class SmtpSink:
    """An SMTP server on loopback that remembers the Message-ID of everything it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self.keys: list[str] = []
        self.times: list[float] = []  # when each arrived (monotonic)
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds each message takes to accept (a slow server)
        self.refuse: set[str] = set()  # recipients it answers 550
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        msg = message_from_bytes(envelope.content)
        with self.lock:
            self.received.append((str(msg["Message-ID"]), str(msg["To"])))
            self.keys.append(str(msg["X-Journey-Key"]))
            self.times.append(time.monotonic())
        return "250 OK"

    @property
    def port(self) -> int:
        return self.controller.port

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(message_id for message_id, _ in self.received)


class Proxy:
    """A TCP proxy; `outage()` closes every connection and refuses new ones for a while."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def outage(self, seconds: float) -> None:
        assert self.listener is not None
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()
        time.sleep(seconds)
        self.open()


def procfile(process: str) -> tuple[dict[str, str], list[str]]:
    """The environment assignments and the command of one of the Procfile's processes."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            words = shlex.split(command)
            env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
            return env, [w for w in words if w.split("=", 1)[0] not in env]
    raise LookupError(f"the Procfile has no {process} process")


def worker_command(processes: int, threads: int | None = None) -> list[str]:
    """The Procfile's worker command with `processes` processes (the tests run several small
    workers, to kill them one at a time) and, if given, `threads` threads."""
    words = procfile("worker")[1]
    for option, value in (("--processes", processes), ("--threads", threads)):
        if value is not None:
            at = words.index(option)
            words = [*words[:at], option, str(value), *words[at + 2 :]]
    return words


class Processes:
    """The Procfile's processes (Dramatiq workers, periodiq), and a sweeper loop where a test
    wants one, each in its own process group (kill -9 takes it all). Workers run with the
    Procfile's settings (delayed-message prefetch, poll interval, shutdown grace), one process
    each."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env | procfile("worker")[0]
        self.workers: list[subprocess.Popen[bytes]] = []
        self.sweeper: subprocess.Popen[bytes] | None = None
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.logs = Path(env["JOURNEY_TEST_LOGS"])

    def _spawn(
        self, args: list[str], name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (lives as long as the process)
        command = [sys.executable, "-m", *args]
        if args[0] == "periodiq":  # a console script only, no `python -m periodiq`
            command = [str(Path(sys.executable).parent / "periodiq"), *args[1:]]
        return subprocess.Popen(
            command,
            env=self.env | (env or {}),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_worker(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        worker = self._spawn(
            worker_command(1),
            f"worker{len(self.workers)}",
            env,
        )
        self.workers.append(worker)
        return worker

    def start_sweeper(self, every: float = 0.5) -> None:
        self.sweeper = self._spawn(["web.cli", "sweep", "--every", str(every)], "sweeper")

    def start_scheduler(self) -> subprocess.Popen[bytes]:
        """periodiq, as the Procfile runs it: the sweep every minute."""
        self.scheduler = self._spawn(["periodiq", "web.periodic"], "scheduler")
        return self.scheduler

    def kill9(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def sigterm(self, process: subprocess.Popen[bytes]) -> None:
        """What a platform sends before it restarts a process (it waits, then kills)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        extra = [p for p in (self.sweeper, self.scheduler) if p is not None]
        return [p for p in [*self.workers, *extra] if p.poll() is None]

    def stop(self) -> None:
        extra = [p for p in (self.sweeper, self.scheduler) if p is not None]
        for process in [*self.workers, *extra]:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill9(process)
