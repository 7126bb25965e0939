"""The benchmark's mail provider: an SMTP server on loopback, in a process of its own, that
accepts every message and only counts it. It speaks just enough SMTP for a real client (EHLO
with PIPELINING, as providers offer it; MAIL, RCPT, DATA with its dot-terminated message,
RSET, NOOP, QUIT), written on asyncio's protocol layer: the engine's throughput is measured
against a sink that costs as little as a sink can, and the sink's own CPU is reported apart."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from typing import Any

END = b"\r\n.\r\n"


class Session(asyncio.Protocol):
    """One client's connection."""

    def __init__(self, received: Any) -> None:
        self.received = received
        self.buffer = b""
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, chunk: bytes) -> None:
        assert self.transport is not None
        self.buffer += chunk
        answers: list[bytes] = []
        while True:
            if self.in_data:
                # The message ends at a line holding only "." (the line before ends in CRLF).
                if self.buffer.startswith(b".\r\n"):
                    end, skip = 0, 3
                else:
                    end, skip = self.buffer.find(END), len(END)
                if end < 0:
                    break
                self.buffer = self.buffer[end + skip :]
                self.in_data = False
                with self.received.get_lock():
                    self.received.value += 1
                answers.append(b"250 OK queued\r\n")
                continue
            cut = self.buffer.find(b"\r\n")
            if cut < 0:
                break
            verb = self.buffer[:4].upper()
            self.buffer = self.buffer[cut + 2 :]
            if verb in (b"EHLO", b"HELO"):
                answers.append(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                answers.append(b"354 end with <CRLF>.<CRLF>\r\n")
                self.in_data = True
            elif verb == b"QUIT":
                self.transport.write(b"".join(answers) + b"221 bye\r\n")
                self.transport.close()
                return
            else:  # MAIL, RCPT, RSET, NOOP: yes
                answers.append(b"250 OK\r\n")
        if answers:
            self.transport.write(b"".join(answers))


def serve(port: int, received: Any, ready: Any) -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: Session(received), "127.0.0.1", port)
    )
    ready.set()
    try:
        loop.run_forever()
    finally:
        server.close()


class Sink:
    """The sink process: `received` counts the messages it accepted."""

    def __init__(self, port: int) -> None:
        self.port = port
        context = multiprocessing.get_context("fork")  # the child runs only the loop
        self._received = context.Value("q", 0)
        ready = context.Event()
        self.process = context.Process(
            target=serve, args=(port, self._received, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")

    @property
    def received(self) -> int:
        return int(self._received.value)

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)
