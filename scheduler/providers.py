"""Deliverable generators, chosen by configuration: the built-in one (offline, deterministic)
or an OpenAI-compatible chat-completions service.

A provider raises on any failure (timeout, HTTP error, an answer that is empty or not the
expected shape); the journey then retries the automation and, when its retries are spent,
alerts the admins. The HTTP provider uses only the standard library.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from scheduler.engine import Generated, GenerationRequest, Generator
from scheduler.generator import BuiltinGenerator, context_facts, fill

PROVIDERS = ("builtin", "openai")


class GenerationError(RuntimeError):
    """The provider did not produce a deliverable; the message says why (never the key)."""


@dataclass(frozen=True)
class ChatSettings:
    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 60.0
    max_tokens: int = 4000


SYSTEM = (
    "You are a business coach writing one month's deliverable of a coaching program for one "
    "client. Write in Markdown: a first line '# Month N: Title', then the sections asked for, "
    "concrete and specific to the client. Use only what you are told about the client."
)


def build_prompt(request: GenerationRequest) -> list[dict[str, str]]:
    """The chat messages for a month: the month's brief from the program, and the client's
    context (onboarding answers, business plan, earlier months, reviewer notes)."""
    month = request.month
    facts = context_facts(request)
    lines = [
        f"Program: {request.program_name}",
        f"Client: {request.client_name}",
        "",
        f"## This month's brief: Month {month.number}: {fill(month.title, facts)}",
        fill(month.summary, facts),
    ]
    if month.deliverables:
        lines += ["", "It must deliver:", *(f"- {fill(d, facts)}" for d in month.deliverables)]
    if month.sections:
        lines += ["", "Sections (heading: guidance):"]
        lines += [f"- {fill(s.heading, facts)}: {fill(s.guidance, facts)}" for s in month.sections]
    if month.prepare:
        lines += [
            "",
            "End with next steps, such as:",
            *(f"- {fill(p, facts)}" for p in month.prepare),
        ]
    lines += ["", "## The client"]
    answers = [f"- {k}: {v}" for k, v in request.onboarding.items() if v not in (None, "")]
    lines += ["Onboarding answers:", *(answers or ["- (none given)"])]
    if request.business_plan.strip():
        lines += ["", "Business plan:", request.business_plan.strip()[:8000]]
    if request.earlier:
        lines += ["", "Earlier months, delivered:"]
        for earlier in request.earlier:
            lines.append(f"### {earlier.title}")
            lines.append(earlier.content.strip()[:2000])
    if request.notes:
        lines += ["", "A reviewer sent the previous version back with these notes:", request.notes]
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]


class ChatCompletionsGenerator:
    """Writes deliverables through an OpenAI-compatible `POST {base_url}/chat/completions`."""

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings

    def generate(self, request: GenerationRequest) -> Generated:
        answer = self.call(
            {
                "model": self.settings.model,
                "messages": build_prompt(request),
                "max_tokens": self.settings.max_tokens,
            }
        )
        content = self.content(answer).strip()
        return Generated(title=title_of(content, request), content=content + "\n")

    def call(self, payload: dict[str, Any]) -> Any:
        url = self.settings.base_url.rstrip("/") + "/chat/completions"
        if not url.lower().startswith(("https://", "http://")):
            raise GenerationError(f"GENERATOR_BASE_URL is not an http(s) URL: {url[:60]!r}")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        http = urllib.request.Request(
            url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(  # nosec B310 # an http(s) URL: checked above, and at start
                http, timeout=self.settings.timeout
            ) as response:
                raw = response.read(10 * 1024 * 1024)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace").strip()
            raise GenerationError(f"provider answered HTTP {exc.code}: {detail[:300]}") from None
        except TimeoutError:
            raise GenerationError(
                f"provider did not answer within {self.settings.timeout:g} s"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError | socket.timeout):
                raise GenerationError(
                    f"provider did not answer within {self.settings.timeout:g} s"
                ) from None
            raise GenerationError(f"provider unreachable: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise GenerationError(f"provider answered with no JSON: {raw[:200]!r}") from None

    @staticmethod
    def content(answer: Any) -> str:
        """The first choice's message text, or GenerationError if the answer lacks one."""
        try:
            choice = answer["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise GenerationError(
                f"provider answer has no choices[0].message.content: {str(answer)[:200]}"
            ) from None
        if not isinstance(text, str) or not text.strip():
            raise GenerationError("provider answered with an empty deliverable")
        if choice.get("finish_reason") == "length":
            raise GenerationError("provider stopped at its length limit: the deliverable is cut")
        return text


def title_of(content: str, request: GenerationRequest) -> str:
    """The deliverable's first Markdown heading, or the month's title from the program."""
    for line in content.splitlines():
        if line.startswith("# "):
            return line[2:].strip()[:300]
    facts = context_facts(request)
    return f"Month {request.month.number}: {fill(request.month.title, facts)}"


def make_generator(name: str, settings: ChatSettings | None = None) -> Generator:
    """The generator configuration asks for."""
    if name == "builtin":
        return BuiltinGenerator()
    if name == "openai":
        if settings is None:
            raise ValueError("the openai generator needs its settings")
        return ChatCompletionsGenerator(settings)
    raise ValueError(f"unknown generator {name!r} (one of {', '.join(PROVIDERS)})")
