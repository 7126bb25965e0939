"""Generation providers: the OpenAI-compatible one against a local HTTP server that plays the
provider (success, slow, 500s, garbage), its place in the journey's retries and escalation, the
choice by configuration, and the generation lane."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from scheduler import controls, review
from scheduler.engine import GenerationRequest
from scheduler.program import load_program
from scheduler.providers import (
    ChatCompletionsGenerator,
    ChatSettings,
    GenerationError,
    build_prompt,
)
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import AutomationType as T
from scheduler.vocab import Lane, Template

GOOD = "# Month 1: Foundation for Bright Bakes\n\n## Where Bright Bakes stands today\n\nText."


class Provider(BaseHTTPRequestHandler):
    """Answers /chat/completions as the server's `script` says, and records each request."""

    def do_POST(self) -> None:
        server: Any = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        mode = server.script.pop(0) if server.script else "ok"
        if mode == "slow":
            time.sleep(2)
            mode = "ok"
        if mode == "500":
            self.answer(500, b'{"error": {"message": "overloaded"}}')
        elif mode == "garbage":
            self.answer(200, b"<html>not json</html>")
        elif mode == "no-choices":
            self.answer(200, json.dumps({"id": "x", "choices": []}).encode())
        elif mode == "empty":
            self.answer(200, json.dumps(completion("   ")).encode())
        elif mode == "cut":
            self.answer(200, json.dumps(completion(GOOD, finish="length")).encode())
        else:
            self.answer(200, json.dumps(completion(GOOD)).encode())

    def answer(self, status: int, data: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def log_message(self, *args: Any) -> None:
        return None


def completion(text: str, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
    }


@pytest.fixture
def provider() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    server.daemon_threads = True
    server.requests = []
    server.script = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield server
    server.shutdown()
    server.server_close()


def generator(provider: Any, timeout: float = 1.0) -> ChatCompletionsGenerator:
    return ChatCompletionsGenerator(
        ChatSettings(base_url=provider.url, model="test-model", api_key="sk-test", timeout=timeout)
    )


def request(notes: str = "") -> GenerationRequest:
    program = load_program()
    return GenerationRequest(
        client_name="Sarah Johnson",
        onboarding={"business": "Bright Bakes", "audience": "home bakers", "goal": "100 orders"},
        business_plan="Sell sourdough kits online.",
        month=program.month(1),
        program_name=program.name,
        earlier=[],
        notes=notes,
    )


def test_success_sends_the_brief_and_the_client_context(provider):
    made = generator(provider).generate(request(notes="shorter please"))
    assert made.title == "Month 1: Foundation for Bright Bakes"
    assert made.content.startswith("# Month 1") and made.content.endswith("\n")
    sent = provider.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test"
    assert sent["body"]["model"] == "test-model"
    prompt = sent["body"]["messages"][1]["content"]
    for words in (
        "Foundation & Business Plan",
        "A 90-day action plan",  # what the month delivers (program brief)
        "Where Bright Bakes stands today",  # sections, filled with the client's facts
        "home bakers",
        "Sell sourdough kits online.",
        "shorter please",
    ):
        assert words in prompt, words


@pytest.mark.parametrize(
    "mode, words",
    [
        ("slow", "did not answer within"),
        ("500", "HTTP 500"),
        ("garbage", "no JSON"),
        ("no-choices", r"no choices\[0\]\.message\.content"),
        ("empty", "empty deliverable"),
        ("cut", "length limit"),
    ],
)
def test_failures_raise(provider, mode, words):
    provider.script = [mode]
    with pytest.raises(GenerationError, match=words) as caught:
        generator(provider, timeout=0.5).generate(request())
    assert "sk-test" not in str(caught.value)


def test_unreachable_provider_raises():
    gen = ChatCompletionsGenerator(ChatSettings(base_url="http://127.0.0.1:9/v1", model="m"))
    with pytest.raises(GenerationError, match="unreachable"):
        gen.generate(request())


def test_prompt_without_context_still_has_the_brief():
    req = request()
    bare = GenerationRequest(req.client_name, {}, "", req.month, req.program_name, [])
    text = build_prompt(bare)[1]["content"]
    assert "(none given)" in text and "It must deliver" in text


# -- in the journey ----------------------------------------------------------------------------


def test_provider_failures_are_retried_then_escalated(harness, provider):
    harness.app.extensions["journey"].generator = generator(provider, timeout=0.5)
    provider.script = ["500", "garbage", "slow", "empty"]
    client = harness.enroll(date(2026, 1, 1))
    harness.run_for(timedelta(hours=12))  # M1 at 09:00, three retries 15 minutes apart
    gen = harness.one(client, type=T.GENERATE_DELIVERABLE, month=1)
    assert gen.status == S.FAILED and gen.retry_count == 3
    assert "GenerationError" in gen.error
    assert harness.emails(Template.AUTOMATION_FAILURE)
    assert len(provider.requests) == 4


def test_provider_success_after_a_retry_writes_the_deliverable(harness, provider):
    harness.app.extensions["journey"].generator = generator(provider)
    provider.script = ["500"]
    client = harness.enroll(date(2026, 1, 1))
    harness.run_for(timedelta(hours=12))
    d = harness.deliverable(client, 1)
    assert d.status == "PENDING_REVIEW" and d.title == "Month 1: Foundation for Bright Bakes"
    gen = harness.one(client, type=T.GENERATE_DELIVERABLE, month=1)
    assert gen.status == S.COMPLETED and "after 1 retry" in gen.detail


# -- configuration and lanes -------------------------------------------------------------------


def test_generator_is_chosen_by_configuration(monkeypatch, tmp_path):
    from scheduler.generator import BuiltinGenerator
    from web import create_app
    from web.config import ConfigError

    base = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'g.sqlite3'}", "REDIS_URL": None}
    engine = create_app(base).extensions["journey"]
    assert isinstance(engine.generator, BuiltinGenerator)
    monkeypatch.setenv("GENERATOR", "openai")
    monkeypatch.setenv("GENERATOR_BASE_URL", "http://127.0.0.1:1/v1/")
    monkeypatch.setenv("GENERATOR_MODEL", "local-model")
    monkeypatch.setenv("GENERATOR_TIMEOUT_SECONDS", "5")
    chosen = create_app(base).extensions["journey"].generator
    assert isinstance(chosen, ChatCompletionsGenerator)
    assert chosen.settings.base_url == "http://127.0.0.1:1/v1"
    assert chosen.settings.model == "local-model" and chosen.settings.timeout == 5
    monkeypatch.setenv("GENERATOR", "magic")
    with pytest.raises(ConfigError, match="GENERATOR"):
        create_app(base)
    monkeypatch.setenv("GENERATOR", "openai")
    monkeypatch.setenv("GENERATOR_TIMEOUT_SECONDS", "900")
    with pytest.raises(ConfigError, match="GENERATOR_TIMEOUT_SECONDS"):
        create_app(base)


def test_generations_travel_on_their_own_lane_manual_first(harness):
    client = harness.enroll(date(2026, 1, 1))
    lanes = harness.transport.lanes
    gen1 = harness.one(client, type=T.GENERATE_DELIVERABLE, month=1)
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=2)
    assert lanes[gen1.id] == Lane.GENERATION
    assert lanes[upcoming.id] == Lane.AUTOMATIONS
    manual = harness.do(review.generate_by_hand, client, 2)
    assert lanes[manual.id] == Lane.GENERATION_NOW
    gen3 = harness.one(client, type=T.GENERATE_DELIVERABLE, month=3)
    harness.do(controls.trigger_now, gen3)
    assert lanes[gen3.id] == Lane.GENERATION_NOW


def test_dramatiq_dispatcher_routes_generations_to_the_generation_queue(harness):
    import dramatiq

    from scheduler.engine import Dispatch
    from tasks.actors import generate_now, generate_scheduled, run_automations
    from tasks.dispatch import DramatiqDispatcher

    broker = dramatiq.get_broker()
    assert {"automations", "generation"} <= set(broker.get_declared_queues())
    assert generate_now.priority < generate_scheduled.priority
    dispatcher = DramatiqDispatcher(harness.clock)
    for queue in ("automations", "generation"):
        broker.flush(queue)
    now = harness.clock.now()
    dispatcher.dispatch(
        [
            Dispatch(1, 1, now, Lane.GENERATION_NOW),
            Dispatch(2, 1, now, Lane.GENERATION),
            Dispatch(3, 1, now),
            Dispatch(4, 2, now),
        ]
    )
    generation = [m.actor_name for m in _messages(broker, "generation")]
    automations = _messages(broker, "automations")
    assert generation == [generate_now.actor_name, generate_scheduled.actor_name]
    # Automations due at the same moment travel together, in one message of format 2.
    assert [(m.actor_name, m.args, m.kwargs) for m in automations] == [
        (run_automations.actor_name, ([[3, 1], [4, 2]],), {"format": 2})
    ]
    for queue in ("automations", "generation"):
        broker.flush(queue)


def _messages(broker: Any, queue: str) -> list[Any]:
    from dramatiq import Message

    return [Message.decode(data) for data in list(broker.queues[queue].queue)]
