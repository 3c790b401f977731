"""The Terraform configuration as data: parsed with python-hcl2, plus a tiny evaluator.

`terraform` and its AWS provider cannot be downloaded here, so the tests read the HCL themselves.
The evaluator understands only the expression forms that read the schema source
(`each.value.x`, `try(each.value.x, null)`, `x == null ? [] : [x]`, `x != null`, `local.esm.x`,
`jsonencode({k = local.esm.x})`, `jsonencode(each.value.x)`, and a dynamic block's `<name>.key` / `<name>.value`). Anything
else raises, so a hard-coded or unexpected expression fails a test instead of passing silently.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
SCHEMA = json.loads((REPO / "core" / "schema.json").read_text())

_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)


class Unsupported(ValueError):
    """An expression the evaluator does not understand."""


@cache
def parsed_files() -> dict[str, dict[str, Any]]:
    return {
        path.name: hcl2.loads(path.read_text(), serialization_options=_OPTIONS)
        for path in sorted(TERRAFORM.glob("*.tf"))
    }


def blocks(kind: str) -> dict[str, dict[str, Any]]:
    """`resource` / `data` blocks as {"<type>.<name>": body}."""
    found: dict[str, dict[str, Any]] = {}
    for doc in parsed_files().values():
        for entry in doc.get(kind, []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    found[f"{rtype}.{name}"] = body
    return found


def resource(address: str) -> dict[str, Any]:
    return blocks("resource")[address]


def data(address: str) -> dict[str, Any]:
    return blocks("data")[address]


def locals_() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for doc in parsed_files().values():
        for entry in doc.get("locals", []):
            merged.update(entry)
    return merged


def variables() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for doc in parsed_files().values():
        for entry in doc.get("variable", []):
            merged.update(entry)
    return merged


def outputs() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for doc in parsed_files().values():
        for entry in doc.get("output", []):
            merged.update(entry)
    return merged


def dynamic_blocks(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for entry in body.get("dynamic", []) for name, spec in entry.items()}


def all_text() -> str:
    return "\n".join(p.read_text() for p in sorted(TERRAFORM.glob("*.tf")))


# ---- the evaluator ------------------------------------------------------------------------

_PATH = r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*"


def _lookup(scope: dict[str, Any], path: str) -> Any:
    head, *rest = path.split(".")
    if head not in scope:
        raise Unsupported(f"unknown name {head!r} in {path!r}")
    value = scope[head]
    for part in rest:
        if not isinstance(value, dict) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


def evaluate(expression: Any, scope: dict[str, Any]) -> Any:
    """Value of an attribute as Terraform would compute it, for the supported forms only.

    `scope` maps names to values: {"each": {"key": k, "value": v}, "local": {"esm": ...}, ...}.
    """
    if not isinstance(expression, str) or not expression.startswith("${"):
        return expression  # a literal (tests may forbid literals where they matter)
    inner = expression[2:-1].strip()
    if re.fullmatch(_PATH, inner):
        return _lookup(scope, inner)
    if m := re.fullmatch(rf"try\(({_PATH}), null\)", inner):
        try:
            return _lookup(scope, m.group(1))
        except KeyError:
            return None
    if m := re.fullmatch(rf"({_PATH}) == null \? \[\] : \[({_PATH})\]", inner):
        value = _lookup(scope, m.group(1))
        return [] if value is None else [_lookup(scope, m.group(2))]
    if m := re.fullmatch(rf"({_PATH}) != null", inner):
        return _lookup(scope, m.group(1)) is not None
    if m := re.fullmatch(rf"jsonencode\(\{{(\w+) = ({_PATH})\}}\)", inner):
        return json.dumps({m.group(1): _lookup(scope, m.group(2))}, separators=(",", ":"))
    if m := re.fullmatch(rf"jsonencode\(({_PATH})\)", inner):
        return json.dumps(_lookup(scope, m.group(1)), separators=(",", ":"))
    raise Unsupported(expression)


def render_dynamic(spec: dict[str, Any], name: str, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks a `dynamic "<name>"` produces: one per element of its for_each."""
    collection = evaluate(spec["for_each"], scope)
    items = collection.items() if isinstance(collection, dict) else enumerate(collection)
    (content,) = spec["content"]
    rendered = []
    for key, value in items:
        inner = {**scope, name: {"key": key, "value": value}}
        rendered.append({attr: evaluate(expr, inner) for attr, expr in content.items()})
    return rendered


def references(expression: str) -> list[str]:
    """Resource references in an expression, e.g. `aws_dynamodb_table.this["events"].arn`."""
    return re.findall(r"(aws_[a-z0-9_]+\.[a-z0-9_]+(?:\[[^\]]+\])?\.[a-z_]+)", expression)
