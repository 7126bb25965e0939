"""Reading a request: the JSON body and the query string, checked against the operation's
entry in the OpenAPI document, so that what the server accepts is what the document says.

The checker covers the part of JSON Schema the document uses (types, enums, required and
unknown properties, lengths, patterns, ranges, `date` and `date-time`); dates come back as
`date`, instants as UTC `datetime`, query integers as `int`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from flask import current_app, request

from scheduler.inputs import closest
from web.api.errors import ApiError
from web.api.spec import YEARS

MAX_BODY = 1024 * 1024
JSON_TYPES = ("application/json",)


def operation() -> dict[str, Any]:
    """The document's entry for the current request's route and method."""
    doc = current_app.extensions["journey_api"]["document"]
    assert request.url_rule is not None
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", request.url_rule.rule)
    item = doc["paths"][path]
    return {
        **item[request.method.lower()],
        "parameters": item.get("parameters", [])
        + item[request.method.lower()].get("parameters", []),
    }


def query() -> dict[str, Any]:
    """The query parameters the operation declares, checked and converted (defaults filled)."""
    doc = current_app.extensions["journey_api"]["document"]
    out: dict[str, Any] = {}
    for p in operation()["parameters"]:
        if p["in"] != "query":
            continue
        name, schema = p["name"], p["schema"]
        values = request.args.getlist(name)
        if not values:
            if "default" in schema:
                out[name] = schema["default"]
            continue
        if len(values) > 1:
            raise ApiError(422, f"{name}: give it once", field=name)
        out[name] = check(coerce(values[0], schema, name), schema, doc, name)
    return out


def coerce(raw: str, schema: dict[str, Any], name: str) -> Any:
    if schema.get("type") == "integer":
        if not re.fullmatch(r"-?[0-9]{1,19}", raw):
            raise ApiError(422, f"{name}: a whole number is required, not {raw!r}", field=name)
        return int(raw)
    if schema.get("type") == "boolean":
        if raw not in ("true", "false"):
            raise ApiError(422, f"{name}: true or false, not {raw!r}", field=name)
        return raw == "true"
    return raw


def body() -> dict[str, Any]:
    """The JSON body, checked against the operation's request schema. An operation whose body
    is optional reads a missing one as `{}`."""
    op = operation()
    spec = op.get("requestBody")
    raw = request.get_data(cache=True)
    # No body at all is an optional body left out; blank bytes are a body that is not JSON.
    if not raw:
        if spec and spec.get("required"):
            raise ApiError(422, "a JSON body is required")
        return {}
    mimetype = request.mimetype
    if mimetype and mimetype not in JSON_TYPES and not mimetype.endswith("+json"):
        raise ApiError(415, f"send JSON (Content-Type: application/json), not {mimetype}")
    data = parse_json(raw)
    if spec is None:
        if data not in ({}, None):
            raise ApiError(422, "this endpoint takes no body")
        return {}
    doc = current_app.extensions["journey_api"]["document"]
    schema = spec["content"]["application/json"]["schema"]
    return check(data, schema, doc, "")


def parse_json(raw: bytes) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=refuse)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="malformed_json") from None


def resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def check(value: Any, schema: dict[str, Any], doc: dict[str, Any], where: str) -> Any:
    """`value` if it conforms to `schema`, converted (formats, whole floats); else ApiError 422
    naming the field."""
    schema = resolve(schema, doc)
    label = where or "body"
    if "oneOf" in schema:
        problems = []
        for option in schema["oneOf"]:
            try:
                return check(value, option, doc, where)
            except ApiError as exc:
                problems.append(exc)
        raise problems[0]
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        actual = kind_of(value)
        ok = actual in allowed or (actual == "integer" and "number" in allowed)
        if not ok:
            wanted = " or ".join(allowed)
            raise ApiError(422, f"{label}: must be {wanted}, not {actual}", field=where or None)
        if actual == "integer" and isinstance(value, float):
            value = int(value)
    if "enum" in schema and value not in schema["enum"]:
        choices = schema["enum"]
        if len(choices) <= 12:
            shown = ", ".join(str(v) for v in choices)
            raise ApiError(422, f"{label}: {value!r} is not one of {shown}", field=where or None)
        # A long list (time zones): the closest names, not the first dozen.
        close = closest(str(value), [str(v) for v in choices])
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ApiError(422, f"{label}: {str(value)[:80]!r} is not known{hint}", field=where or None)
    if isinstance(value, str):
        return check_string(value, schema, where)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise ApiError(422, f"{label}: must be at least {schema['minimum']}", field=where)
        if "maximum" in schema and value > schema["maximum"]:
            raise ApiError(422, f"{label}: must be at most {schema['maximum']}", field=where)
        return value
    if isinstance(value, list):
        items = schema.get("items")
        return (
            [check(v, items, doc, f"{where}[{i}]") for i, v in enumerate(value)] if items else value
        )
    if isinstance(value, dict):
        return check_object(value, schema, doc, where)
    return value


def check_object(value: dict[str, Any], schema: dict[str, Any], doc: dict[str, Any], where: str):
    props = schema.get("properties", {})
    prefix = f"{where}." if where else ""
    for name in schema.get("required", []):
        if name not in value:
            raise ApiError(422, f"{prefix}{name}: required", field=prefix + name)
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        raise ApiError(
            422,
            f"{where or 'body'}: at most {schema['maxProperties']} entries",
            field=where or None,
        )
    out: dict[str, Any] = {}
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames")
    for name, item in value.items():
        field = prefix + name
        if names is not None:
            check(name, names, doc, field)
        if name in props:
            out[name] = check(item, props[name], doc, field)
        elif extra is False:
            raise ApiError(422, f"{field}: unknown field", field=field)
        elif isinstance(extra, dict):
            out[name] = check(item, extra, doc, field)
        else:
            out[name] = item
    return out


def check_string(value: str, schema: dict[str, Any], where: str) -> Any:
    label = where or "body"
    field = where or None
    if "\x00" in value or SURROGATE.search(value):
        raise ApiError(422, f"{label}: NUL and lone surrogates are not allowed", field=field)
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise ApiError(422, f"{label}: at least {schema['minLength']} characters", field=field)
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise ApiError(422, f"{label}: at most {schema['maxLength']} characters", field=field)
    if "pattern" in schema and not compiled(schema["pattern"]).search(value):
        raise ApiError(422, f"{label}: {value[:80]!r} is not in the expected form", field=field)
    form = schema.get("format")
    if form == "date":
        return parse_date(value, where)
    if form == "date-time":
        return parse_instant(value, where)
    return value


SURROGATE = re.compile("[\ud800-\udfff]")


@cache
def compiled(pattern: str) -> re.Pattern[str]:
    """The document's (ECMA) pattern in Python: there `$` ends the text, never a final line."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


DATE_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INSTANT_FORM = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_date(value: str, where: str) -> date:
    if not DATE_FORM.fullmatch(value):
        raise ApiError(422, f"{where}: a date YYYY-MM-DD is required, not {value!r}", field=where)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, f"{where}: {value!r} is not a date", field=where) from None
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise ApiError(422, f"{where}: years {YEARS[0]}-{YEARS[1]} only", field=where)
    return day


def parse_instant(value: str, where: str) -> datetime:
    if not INSTANT_FORM.fullmatch(value):
        raise ApiError(
            422,
            f"{where}: an ISO 8601 instant with an offset is required "
            f"(2026-01-05T09:00:00Z), not {value!r}",
            field=where,
        )
    text = value.upper().replace(" ", "T").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
        if not YEARS[0] <= moment.year <= YEARS[1]:
            raise ValueError
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(
            422,
            f"{where}: {value!r} is not a valid instant (years {YEARS[0]}-{YEARS[1]})",
            field=where,
        ) from None
