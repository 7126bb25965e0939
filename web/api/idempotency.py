"""The `Idempotency-Key` header on POSTs (as Stripe does it).

The first request with a key claims it: a row keyed by (token, key) records the request's
fingerprint, committed before the action runs, so that a concurrent duplicate hits the unique
constraint and is told the first is still in progress (409). The response is stored in the
same transaction as the action's changes, so a retry gets exactly the first answer, and an
action that crashed leaves no stored answer and releases the key. A key reused with another
request is refused (422). Keys are forgotten after 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta

from flask import Response, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.models import IdempotencyKey
from web.api.errors import ApiError

KEEP = timedelta(hours=24)
# A claim whose request never finished (its process died) is given up after this.
ABANDONED = timedelta(minutes=10)
KEY = re.compile(r"[!-~]{1,255}")
HEADER = "Idempotency-Key"


def requested_key() -> str | None:
    """The request's key, if it carries one (only POSTs honour it)."""
    raw = request.headers.get(HEADER)
    if raw is None or request.method != "POST":
        return None
    if not KEY.fullmatch(raw):
        raise ApiError(
            400,
            f"{HEADER}: 1-255 visible ASCII characters (a UUID is a good key)",
            code="invalid_idempotency_key",
            field=HEADER,
        )
    return raw


def fingerprint() -> str:
    """What makes two requests the same: method, path and query, and the body (JSON compared
    by value, so that key order and spacing do not matter)."""
    raw = request.get_data(cache=True)
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = raw
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.full_path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def claim(session: Session, token_id: int, key: str, now: datetime) -> IdempotencyKey | Response:
    """Claim `key` for this request: the claim row to complete, or the stored response of the
    request that used the key first."""
    print_ = fingerprint()
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP))
    session.commit()
    for _ in range(3):
        row = IdempotencyKey(token_id=token_id, key=key, fingerprint=print_, created_at=now)
        session.add(row)
        try:
            session.commit()
            return row
        except IntegrityError:
            session.rollback()
        found = session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.token_id == token_id, IdempotencyKey.key == key
            )
        )
        if found is None:  # released in the meantime: try again
            continue
        if found.fingerprint != print_:
            raise ApiError(
                422,
                f"{HEADER} {key!r} was used with another request; use a new key",
                code="idempotency_key_reused",
                field=HEADER,
            )
        if found.status_code is not None:
            return replay(found)
        if now - found.created_at < ABANDONED:
            raise ApiError(
                409,
                f"a request with {HEADER} {key!r} is still in progress; retry later",
                code="idempotency_in_progress",
                field=HEADER,
            )
        session.delete(found)
        session.commit()
    raise ApiError(409, f"{HEADER} {key!r} is contended; retry later", field=HEADER)


def replay(row: IdempotencyKey) -> Response:
    response = Response(row.response or "", status=row.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def remember(session: Session, row: IdempotencyKey, response: Response) -> None:
    """Store the answer on the claim (committed with the action's own changes)."""
    stored = session.merge(row)
    stored.status_code = response.status_code
    stored.response = response.get_data(as_text=True)


def release(session: Session, row: IdempotencyKey) -> None:
    """The action crashed: forget the claim so that a retry runs it."""
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
    session.commit()
