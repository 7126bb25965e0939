"""The second channel for admin alerts: a Slack-compatible incoming webhook (a JSON POST of
`{"text": ...}`), for escalations and failures. It goes through the outbox like an email, so a
retried automation posts once."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from scheduler.vocab import Template

ADDRESS = "webhook"  # the outbox row's recipient for a webhook post
ALERTS = frozenset({Template.ADMIN_ESCALATION, Template.AUTOMATION_FAILURE})
TIMEOUT_SECONDS = 10
LIMIT = 3000  # characters of the message body that go in the post


class WebhookError(Exception):
    """The webhook did not accept the post."""


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
        raise WebhookError(f"the webhook answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise WebhookError(f"the webhook could not be reached: {exc}") from None
