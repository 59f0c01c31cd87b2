"""The contract package both deploy units ship, and how each unit gets it."""

from __future__ import annotations

import base64
import filecmp
import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime

import pytest
from inference_contract.messages import MalformedMessage, PredictionMessage, decode_push
from inference_contract.predictions import PUBLIC_FIELDS, public_view

from scripts.package_units import CONTRACT, assemble, write_zip

DOCUMENT = {"id": "p1", "model": "resnet50", "image_uri": "gs://uploads/p1/0", "content_type": "image/jpeg",
            "callback_url": "https://cb.example/x", "status": "queued", "owner": "k1"}


def push_envelope(data: bytes, attributes: dict, message_id: str = "m1") -> dict:
    return {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes,
                        "messageId": message_id}, "subscription": "projects/p/subscriptions/s"}


def test_what_the_api_encodes_the_model_service_decodes():
    message = PredictionMessage.for_document(DOCUMENT)
    data, attributes = message.encode()
    assert attributes == {"prediction_id": "p1", "model": "resnet50"}
    pushed = decode_push(push_envelope(data, attributes))
    assert pushed.prediction == message
    assert pushed.message_id == "m1" and pushed.attributes == attributes


@pytest.mark.parametrize(("publish_time", "expected"), [
    ("2026-12-07T04:02:22.506123456Z", datetime(2026, 12, 7, 4, 2, 22, 506123, tzinfo=UTC)),
    ("2026-12-07T04:02:22.5Z", datetime(2026, 12, 7, 4, 2, 22, 500000, tzinfo=UTC)),
    ("2026-12-07T04:02:22Z", datetime(2026, 12, 7, 4, 2, 22, tzinfo=UTC)),
    ("yesterday", None), (17, None), (None, None)])
def test_the_publish_time_is_read_to_the_microsecond_and_never_refuses_a_message(publish_time, expected):
    data, attributes = PredictionMessage.for_document(DOCUMENT).encode()
    envelope = push_envelope(data, attributes)
    envelope["message"]["publishTime"] = publish_time
    assert decode_push(envelope).published_at == expected


def test_a_first_publish_carries_the_document_as_created_with_its_timestamps():
    document = {**DOCUMENT, "created_at": datetime(2026, 12, 7, 4, 2, 22, 506123, tzinfo=UTC),
                "deadline_at": None, "attempts": 0, "callback": None}
    message = PredictionMessage.for_document(document, "2026-12-07T04:02:22.512345678Z")
    data, attributes = message.encode()
    pushed = decode_push(push_envelope(data, attributes))
    assert pushed.prediction == message
    assert pushed.prediction.created.document["created_at"] == document["created_at"]
    assert pushed.prediction.created.update_time == "2026-12-07T04:02:22.512345678Z"
    assert PredictionMessage.for_document(document).created is None  # a republish: the claim reads


@pytest.mark.parametrize("created", [
    {"document": {"id": "another"}, "update_time": "2026-12-07T04:02:22Z"},
    {"document": {"id": "p1", "created_at": {"$timestamp": "noon"}}, "update_time": "2026-12-07T04:02:22Z"},
    {"document": {"id": "p1"}},
    "not an object"])
def test_a_copy_that_does_not_fit_is_ignored_not_refused(created):
    data, attributes = PredictionMessage.for_document(DOCUMENT).encode()
    envelope = push_envelope(json.dumps({**json.loads(data), "created": created}).encode(), attributes)
    pushed = decode_push(envelope)
    assert pushed.prediction.created is None and pushed.prediction.prediction_id == DOCUMENT["id"]


def test_a_message_that_names_its_prediction_only_in_attributes_decodes_without_an_image():
    pushed = decode_push(push_envelope(b"", {"prediction_id": "p1", "model": "cat"}))
    assert (pushed.prediction.prediction_id, pushed.prediction.model, pushed.prediction.image_uri) == (
        "p1", "cat", None)


@pytest.mark.parametrize("envelope", [
    None, [], {"message": "text"},
    {"message": {"data": "%%"}},
    push_envelope(b"[1]", {}),
    push_envelope(b'{"id": "p1"}', {}),
    push_envelope(b'{"model": "cat"}', {}),
    push_envelope(b'{"id": 5, "model": "cat"}', {}),
    {"message": {"data": "", "attributes": ["a"]}},
])
def test_malformed_envelopes_are_refused(envelope):
    with pytest.raises(MalformedMessage):
        decode_push(envelope)


def test_the_public_view_has_the_public_fields_only_with_iso_timestamps():
    created = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)
    view = public_view({**DOCUMENT, "created_at": created, "lease_token": "secret"})
    assert tuple(view) == PUBLIC_FIELDS
    assert view["created_at"] == "2026-11-22T01:02:03+00:00" and view["started_at"] is None
    assert "lease_token" not in view and "owner" not in view


@pytest.mark.parametrize("unit", ["function", "model-service"])
def test_each_unit_is_assembled_with_the_contract_beside_its_main(unit, tmp_path):
    context = assemble(unit, tmp_path / unit)
    copied = context / "inference_contract"
    comparison = filecmp.dircmp(CONTRACT, copied, ignore=["__pycache__"])
    assert not (comparison.left_only or comparison.right_only or comparison.diff_files)
    assert (context / "main.py").is_file() and (context / "requirements.txt").is_file()
    assert not list(context.rglob("__pycache__"))
    # Assembling again replaces the context whole.
    (copied / "stale.py").write_text("")
    assert not (assemble(unit, context) / "inference_contract" / "stale.py").exists()


# Imports each unit's code with the development install's finders removed: what
# the unit imports must come from its own context, as in its container.
_IMPORT_FROM_CONTEXT = """
import importlib, os, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "").lower()]
names = sys.argv[1:]
for name in names:
    module = importlib.import_module(name)
    assert module.__file__.startswith(os.getcwd()), (name, module.__file__)
import inference_contract
assert inference_contract.__file__.startswith(os.getcwd()), inference_contract.__file__
print("ok")
"""


@pytest.mark.parametrize("unit, modules", [
    ("function", ["main", "prediction_api.wiring"]),
    ("model-service", ["model_service.wiring", "model_service.handler"]),
])
def test_each_unit_imports_the_contract_from_its_own_context(unit, modules, tmp_path):
    context = assemble(unit, tmp_path / unit)
    result = subprocess.run([sys.executable, "-c", _IMPORT_FROM_CONTEXT, *modules], cwd=context,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_the_function_archive_is_its_context_and_byte_identical_when_nothing_changed(tmp_path):
    context = assemble("function", tmp_path / "function")
    first = write_zip(context, tmp_path / "first.zip")
    second = write_zip(assemble("function", tmp_path / "again"), tmp_path / "second.zip")
    assert first.read_bytes() == second.read_bytes()
    names = set(zipfile.ZipFile(first).namelist())
    assert {"main.py", "requirements.txt", "inference_contract/messages.py",
            "inference_contract/naming.json", "prediction_api/service.py"} <= names


def test_naming_json_is_what_the_contract_reads():
    from inference_contract import naming

    convention = json.loads((CONTRACT / "naming.json").read_text())
    assert naming.topic_name("cat") == convention["topic_prefix"] + "cat"
