"""The contract, as JSON (/api/openapi.json) and as a page a person reads (/api/docs), both
from the one document in `spec`. The page is plain server-rendered HTML: no script, no CDN, one stylesheet (allowed by its
Content-Security-Policy through a nonce)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, render_template_string

from web import security
from web.api import bp, reply


def document() -> dict[str, Any]:
    return current_app.extensions["journey_api"]["document"]


@bp.get("/openapi.json")
def openapi() -> Response:
    return reply(document())


@bp.get("/docs")
def docs() -> str:
    doc = document()
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            params = [resolve_param(p, doc) for p in [*shared, *op.get("parameters", [])]]
            request = op.get("requestBody")
            groups.setdefault(op["tags"][0], []).append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": op.get("description", ""),
                    "params": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": describe(p["schema"], doc),
                            "description": p.get("description", ""),
                        }
                        for p in params
                    ],
                    "body": fields(request["content"]["application/json"]["schema"], doc)
                    if request
                    else None,
                    "body_required": bool(request and request.get("required")),
                    "responses": [
                        (code, response_schema(answer, doc))
                        for code, answer in op["responses"].items()
                    ],
                }
            )
    models = {name: fields({"$ref": f"#/components/schemas/{name}"}, doc) for name in RESPONSES}
    return render_template_string(
        PAGE, info=doc["info"], groups=groups, models=models, nonce=security.nonce()
    )


RESPONSES = (
    "Client",
    "Timeline",
    "Automation",
    "Deliverable",
    "Generation",
    "Hold",
    "LogEntry",
    "Stats",
    "Error",
)


def resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"][schema["$ref"].split("/")[2]][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def resolve_param(p: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    return resolve(p, doc)


def response_schema(answer: dict[str, Any], doc: dict[str, Any]) -> str:
    answer = resolve(answer, doc)
    content = answer.get("content", {}).get("application/json")
    name = content["schema"]["$ref"].rsplit("/", 1)[1] if content else ""
    return f"{answer['description']} {name}".strip()


def describe(schema: dict[str, Any], doc: dict[str, Any]) -> str:
    """A short type description: `string (date)`, `integer 1-8`, `one of A, B`..."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        target = resolve(schema, doc)
        if name == "TimeZone":
            return "string (IANA time zone)"
        return (
            name
            if target.get("type") == "object" and target.get("properties")
            else describe(target, doc)
        )
    if "oneOf" in schema:
        return " or ".join(describe(s, doc) for s in schema["oneOf"])
    kinds = schema.get("type", "any")
    kind = " or ".join(kinds) if isinstance(kinds, list) else kinds
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"] if v is not None)
    if "format" in schema:
        kind += f" ({schema['format']})"
    if "minimum" in schema and "maximum" in schema and schema["maximum"] < 10**9:
        kind += f" {schema['minimum']}-{schema['maximum']}"
    if "maxLength" in schema:
        kind += f", at most {schema['maxLength']} characters"
    if kind.startswith("array") and "items" in schema:
        kind = f"array of {describe(schema['items'], doc)}"
    return kind


def fields(schema: dict[str, Any], doc: dict[str, Any]) -> list[dict[str, Any]]:
    target = resolve(schema, doc)
    required = set(target.get("required", []))
    return [
        {
            "name": name,
            "type": describe(prop, doc),
            "required": name in required,
            "description": resolve(prop, doc).get("description", ""),
        }
        for name, prop in target.get("properties", {}).items()
    ]


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ info.title }}</title>
<style nonce="{{ nonce }}">
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
  color: #1d2430; }
h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #d8dde6; padding-bottom: .3rem;
  margin-top: 2.5rem; }
code, .path { font-family: ui-monospace, monospace; font-size: 14px; }
.op { border: 1px solid #d8dde6; border-radius: 6px; padding: .6rem 1rem; margin: 1rem 0; }
.method { display: inline-block; min-width: 4.5rem; font-weight: 700; }
.GET { color: #1a7f37; } .POST { color: #0550ae; } .PATCH { color: #8250df; }
.DELETE { color: #cf222e; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; font-size: 14px; }
th, td { text-align: left; border-top: 1px solid #eef0f4; padding: .2rem .5rem; vertical-align: top; }
th { color: #57606a; font-weight: 600; } .req { color: #cf222e; font-size: 12px; }
.desc { white-space: pre-line; } nav a { margin-right: 1rem; }
</style>
</head>
<body>
<h1>{{ info.title }}</h1>
<p>Version {{ info.version }} · <a href="openapi.json">openapi.json</a></p>
<p class="desc">{{ info.description }}</p>
<p>Example: <code>curl -H "Authorization: Bearer $TOKEN" {{ request.host_url }}api/clients</code></p>
<nav>{% for tag in groups %}<a href="#{{ tag }}">{{ tag }}</a>{% endfor %}<a href="#models">Models</a></nav>
{% for tag, ops in groups.items() %}
<h2 id="{{ tag }}">{{ tag }}</h2>
{% for op in ops %}
<div class="op" id="{{ op.id }}">
<div><span class="method {{ op.method }}">{{ op.method }}</span><span class="path">{{ op.path }}</span>
 — {{ op.summary }}</div>
{% if op.description %}<p class="desc">{{ op.description }}</p>{% endif %}
{% if op.params %}<table><tr><th>Parameter</th><th>In</th><th>Type</th><th></th></tr>
{% for p in op.params %}<tr><td><code>{{ p.name }}</code>{% if p.required %} <span class="req">required</span>{% endif %}</td>
<td>{{ p.in }}</td><td>{{ p.type }}</td><td>{{ p.description }}</td></tr>{% endfor %}</table>{% endif %}
{% if op.body %}<table><tr><th>Body field{% if not op.body_required %} (body optional){% endif %}</th><th>Type</th><th></th></tr>
{% for f in op.body %}<tr><td><code>{{ f.name }}</code>{% if f.required %} <span class="req">required</span>{% endif %}</td>
<td>{{ f.type }}</td><td>{{ f.description }}</td></tr>{% endfor %}</table>{% endif %}
<table><tr><th>Status</th><th>Answer</th></tr>
{% for code, what in op.responses %}<tr><td>{{ code }}</td><td>{{ what }}</td></tr>{% endfor %}</table>
</div>
{% endfor %}
{% endfor %}
<h2 id="models">Models</h2>
{% for name, fs in models.items() %}
<h3 id="model-{{ name }}">{{ name }}</h3>
<table><tr><th>Field</th><th>Type</th><th></th></tr>
{% for f in fs %}<tr><td><code>{{ f.name }}</code></td><td>{{ f.type }}</td><td>{{ f.description }}</td></tr>{% endfor %}
</table>
{% endfor %}
</body>
</html>
"""
