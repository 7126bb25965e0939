"""Reading a request: the JSON body and the query string, validated by `jsonschema` (Draft
2020-12, with format checking) against the operation's entry in the OpenAPI document, so that
what the server accepts is what the document says. Valid values are then read by the domain's
parsers: dates come back as `date`, instants as UTC `datetime`, query integers as `int`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, request
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from scheduler import errors
from scheduler import inputs as parse
from web.api.errors import ApiError

MAX_BODY = 1024 * 1024
JSON_TYPES = ("application/json",)
DOCUMENT = "urn:journey-engine:api"
UTC = ZoneInfo("UTC")


class Contract:
    """The document's schemas as validators, built once per operation and reused."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.registry: Registry = Registry().with_resource(
            DOCUMENT, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.validators: dict[str, Draft202012Validator] = {}

    def validator(self, pointer: str) -> Draft202012Validator:
        """The validator of the schema at `pointer` (a JSON pointer into the document); its
        `$ref`s resolve against the whole document."""
        if pointer not in self.validators:
            self.validators[pointer] = Draft202012Validator(
                {"$ref": f"{DOCUMENT}#{pointer}"},
                registry=self.registry,
                format_checker=FormatChecker(),
            )
        return self.validators[pointer]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.registry.resolver(DOCUMENT).lookup(schema["$ref"]).contents
        return schema


def contract() -> Contract:
    return current_app.extensions["journey_api"]["contract"]


def escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def operation() -> tuple[str, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """The current request's operation in the document: its JSON pointer, its entry, and its
    parameters (the path's and the operation's), each with its pointer."""
    assert request.url_rule is not None
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", request.url_rule.rule)
    method = request.method.lower()
    item = contract().document["paths"][path]
    base = f"/paths/{escape(path)}"
    parameters = [(f"{base}/parameters/{i}", p) for i, p in enumerate(item.get("parameters", []))]
    parameters += [
        (f"{base}/{method}/parameters/{i}", p)
        for i, p in enumerate(item[method].get("parameters", []))
    ]
    return f"{base}/{method}", item[method], parameters


def query() -> dict[str, Any]:
    """The query parameters the operation declares, validated and read (defaults filled)."""
    _, _, parameters = operation()
    out: dict[str, Any] = {}
    for pointer, p in parameters:
        if "$ref" in p:
            pointer, p = p["$ref"].removeprefix("#"), contract().resolve(p)
        if p["in"] != "query":
            continue
        name, schema = p["name"], contract().resolve(p["schema"])
        values = request.args.getlist(name)
        if not values:
            if "default" in schema:
                out[name] = schema["default"]
            continue
        if len(values) > 1:
            raise ApiError(422, f"{name}: give it once", field=name)
        value = coerce(values[0], schema, name)
        refuse(contract().validator(f"{pointer}/schema").iter_errors(value), name)
        out[name] = read(value, schema, name)
    return out


def coerce(raw: str, schema: dict[str, Any], name: str) -> Any:
    """A query string value as the type its schema declares (the rest stays text)."""
    kind = schema.get("type")
    if kind == "integer":
        try:
            return parse.parse_int(raw, name)
        except errors.Invalid as exc:
            raise ApiError(422, exc.message, field=name) from None
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise ApiError(422, f"{name}: true or false, not {raw[:40]!r}", field=name)
        return raw == "true"
    return raw


def body() -> dict[str, Any]:
    """The JSON body, validated against the operation's request schema. An operation whose
    body is optional reads a missing one as `{}`."""
    pointer, op, _ = operation()
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
    schema_pointer = f"{pointer}/requestBody/content/application~1json/schema"
    refuse(contract().validator(schema_pointer).iter_errors(data), "")
    return read(data, spec["content"]["application/json"]["schema"], "")


def parse_json(raw: bytes) -> Any:
    def refuse_constant(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="malformed_json") from None
    try:  # a lone surrogate (from a "\\ud800" escape) is no character any database stores
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, "the body holds a lone surrogate (\\ud800-\\udfff)") from None
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply", code="malformed_json") from None
    return data


# -- what a refusal says ------------------------------------------------------------------------


def refuse(found: Iterator[ValidationError], where: str) -> None:
    """Raise the most telling of the validation errors as a 422 naming its field."""
    error = best_match(found)
    if error is None:
        return
    field = field_of(error, where)
    raise ApiError(422, f"{field or 'body'}: {describe(error)}", field=field or None)


def field_of(error: ValidationError, where: str) -> str:
    """The dotted path of the field the error is about (`onboarding.goal`, `items[2]`): for a
    missing or unknown property, that property."""
    path = where
    for part in error.absolute_path:
        path = f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}" if path else part
    instance = error.instance
    name: str | None = None
    if error.validator == "required" and isinstance(instance, dict):
        name = next((n for n in error.validator_value if n not in instance), None)
    elif error.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        name = next((n for n in sorted(instance) if n not in known), None)
    elif error.validator == "propertyNames" or (
        error.parent is not None and error.parent.validator == "propertyNames"
    ):
        name = str(instance)
    if name is not None:
        path = f"{path}.{name}" if path else name
    return path


def describe(error: ValidationError) -> str:
    """The error in a sentence, without a dump of long enumerations."""
    value = error.instance
    shown = repr(value)[:80]
    match error.validator:
        case "required":
            return "required"
        case "additionalProperties":
            return "unknown field"
        case "type":
            wanted = error.validator_value
            wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
            return f"must be {wanted}, not {kind_of(value)}"
        case "enum":
            choices = [str(c) for c in error.validator_value if c is not None]
            if len(choices) <= 12:
                return f"{shown} is not one of {', '.join(choices)}"
            close = parse.closest(str(value), choices)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            return f"{shown} is not one of the {len(choices)} accepted values{hint}"
        case "pattern":
            return f"{shown} is not in the expected form"
        case "format":
            return f"{shown} is not a valid {error.validator_value}"
        case "minLength":
            return f"at least {error.validator_value} characters"
        case "maxLength":
            return f"at most {error.validator_value} characters"
        case "minimum":
            return f"must be at least {error.validator_value}"
        case "maximum":
            return f"must be at most {error.validator_value}"
        case "maxProperties":
            return f"at most {error.validator_value} entries"
    return error.message


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# -- valid values, read by the domain's parsers ------------------------------------------------


def read(value: Any, schema: dict[str, Any], where: str) -> Any:
    """A valid value with its dates and instants read by the domain's parsers (which also
    hold them to the engine's range of years)."""
    schema = contract().resolve(schema)
    try:
        return converted(value, schema, where)
    except errors.Invalid as exc:
        raise ApiError(422, exc.message, field=exc.field or where or None) from None


def converted(value: Any, schema: dict[str, Any], where: str) -> Any:
    schema = contract().resolve(schema)
    if "oneOf" in schema:  # the document's only use: a nullable reference
        if value is None:
            return None
        options = [contract().resolve(o) for o in schema["oneOf"]]
        schema = next((o for o in options if o.get("type") != "null"), {})
    if isinstance(value, str):
        if schema.get("format") == "date":
            return parse.parse_date(value, where)
        if schema.get("format") == "date-time":
            return parse.parse_instant(value, where, UTC)
        return value
    if isinstance(value, float) and value.is_integer() and schema.get("type") == "integer":
        return int(value)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            name: converted(
                item,
                props.get(name, extra if isinstance(extra, dict) else {}),
                f"{where}.{name}" if where else name,
            )
            for name, item in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [converted(v, schema["items"], f"{where}[{i}]") for i, v in enumerate(value)]
    return value
