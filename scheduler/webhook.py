"""The second channel for admin alerts: a Slack-compatible incoming webhook (a JSON POST of
`{"text": ...}`), for escalations and failures. It goes through the outbox like an email, so a
retried automation posts once."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from scheduler.engine import NotSent
from scheduler.vocab import Template

ADDRESS = "webhook"  # the outbox row's recipient for a webhook post
ALERTS = frozenset({Template.ADMIN_ESCALATION, Template.AUTOMATION_FAILURE})
TIMEOUT_SECONDS = 10
LIMIT = 3000  # characters of the message body that go in the post


class WebhookError(Exception):
    """The post may or may not have arrived (the connection broke, or timed out)."""


class WebhookRefused(WebhookError, NotSent):
    """The webhook answered with an error, or could not be reached: the post did not land."""


def message(subject: str, text: str) -> dict[str, str]:
    body = text.split("\n--\n", 1)[0].strip()  # without the email footer
    return {"text": f"*{subject}*\n{body[:LIMIT]}"}


def post(url: str, subject: str, text: str, idempotency_key: str) -> None:
    if not url.lower().startswith(("https://", "http://")):
        raise WebhookError(f"not an http(s) URL: {url[:60]!r}")
    request = urllib.request.Request(
        url,
        data=json.dumps(message(subject, text)).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(  # nosec B310 # an http(s) URL: checked above, and at start
            request, timeout=TIMEOUT_SECONDS
        ) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise WebhookRefused(f"the webhook answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError | OSError) and not isinstance(
            exc.reason, TimeoutError
        ):
            raise WebhookRefused(f"the webhook could not be reached: {exc.reason}") from None
        raise WebhookError(f"the webhook did not answer: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise WebhookError(f"the webhook did not answer: {exc}") from None
