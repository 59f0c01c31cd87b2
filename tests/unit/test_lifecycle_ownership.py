"""Every transition of a prediction is defined once, in inference_contract.lifecycle.

The units' source is read as Python (ast), not run: a unit that writes a lifecycle
field itself (a dict, a keyword or an item assignment naming `started_at`,
`lease_expires_at`, `reconcile_at`, ..., or a `status` set to one of the
prediction's statuses), or that defines a function named as one of the
transitions, has grown a rule of its own beside the contract's.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from inference_contract import lifecycle
from inference_contract.predictions import STATUSES

ROOT = Path(__file__).resolve().parents[2]
UNIT_SOURCES = sorted([*(ROOT / "functions").rglob("*.py"), *(ROOT / "cloudrun_model").rglob("*.py")])
STATUS_NAMES = {"QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"}
TRANSITIONS = {"new_prediction", "claim", "renew", "release", "run_outcome", "finish", "claim_callback",
               "record_callback", "fail", "reconcile", "dead_letter", "lease_is_fresh", "lease_expiry",
               "cancel", "deadline_passed"}
OTHER_FIELDS = lifecycle.LIFECYCLE_FIELDS - {"status"}


def _is_status_value(node: ast.AST) -> bool:
    return ((isinstance(node, ast.Name) and node.id in STATUS_NAMES)
            or (isinstance(node, ast.Attribute) and node.attr in STATUS_NAMES)
            or (isinstance(node, ast.Constant) and node.value in STATUSES))


def _reads(name: str, value: ast.AST) -> bool:
    """value is the same field read from a document (doc["x"], doc.get("x")): copied, not changed."""
    if isinstance(value, ast.Subscript):
        return isinstance(value.slice, ast.Constant) and value.slice.value == name
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "get"
            and bool(value.args) and isinstance(value.args[0], ast.Constant) and value.args[0].value == name)


def _writes(name: str | None, value: ast.AST) -> bool:
    if _reads(name, value):
        return False
    return name in OTHER_FIELDS or (name == "status" and _is_status_value(value))


# Calls whose keywords are a document's fields.
WRITING_CALLS = {"update", "set", "dict"}


def _call_name(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def own_transitions(source: str) -> list[str]:
    """Where this source writes a lifecycle field or defines a transition, one line each."""
    found = []
    tree = ast.parse(source)
    # A JSON Schema's "properties" (the OpenAPI document) describes the fields; it does not write them.
    schemas = {id(value) for node in ast.walk(tree) if isinstance(node, ast.Dict)
               for key, value in zip(node.keys, node.values, strict=True)
               if isinstance(key, ast.Constant) and key.value == "properties"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and id(node) not in schemas:
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and _writes(key.value, value):
                    found.append(f"line {node.lineno}: a dict writes {key.value!r}")
        elif isinstance(node, ast.Call) and _call_name(node) in WRITING_CALLS:
            for keyword in node.keywords:
                if _writes(keyword.arg, keyword.value):
                    found.append(f"line {node.lineno}: a call writes {keyword.arg!r}")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if (isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant)
                        and _writes(target.slice.value, node.value)):
                    found.append(f"line {node.lineno}: an assignment writes {target.slice.value!r}")
    for node in tree.body:
        # A transition is a function of a document (main.py's entry points of the same names are not).
        if (isinstance(node, ast.FunctionDef) and node.name in TRANSITIONS and node.args.args
                and node.args.args[0].arg == "document"):
            found.append(f"line {node.lineno}: defines its own {node.name}()")
    return sorted(found, key=lambda line: int(line.split(":")[0].split()[1]))


@pytest.mark.parametrize("path", UNIT_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unit_defines_a_transition_of_its_own(path):
    assert own_transitions(path.read_text()) == []


def test_the_check_finds_a_transition_written_in_a_unit():
    source = '''
from inference_contract.predictions import FAILED

def fail(document, now):
    return {"status": FAILED, "completed_at": now}

def renew_lease(document, now, lease):
    document["lease_expires_at"] = now + lease
    store.update(reconcile_at=now)
'''
    assert own_transitions(source) == [
        "line 4: defines its own fail()",
        "line 5: a dict writes 'status'", "line 5: a dict writes 'completed_at'",
        "line 8: an assignment writes 'lease_expires_at'", "line 9: a call writes 'reconcile_at'",
    ]


def test_reading_describing_and_other_statuses_are_not_transitions():
    source = '''
health = {"status": "ready"}
log.info("seen", extra={"attempts": document.get("attempts"), "status": document["status"]})
schema = {"properties": {"started_at": _nullable(timestamp), "status": {"enum": list(STATUSES)}}}
lifecycle.claim(document, now, lease_token=token)
'''
    assert own_transitions(source) == []


def test_the_units_sources_are_found():
    names = {path.name for path in UNIT_SOURCES}
    assert {"service.py", "handler.py", "firestore_runs.py", "run_store.py"} <= names
