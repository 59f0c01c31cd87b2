"""`inference cancel` and `inference list` against the real API app (in-memory fakes behind it)."""

from __future__ import annotations

import json

import pytest
from inference_cli import main as cli

from tests.images import sample
from tests.unit.test_cli import Server


@pytest.fixture
def server():
    running = Server()
    running.store.on_wait = None  # predictions stay queued: there is something to cancel
    yield running
    running.http.shutdown()


def _submit(server, model: str = "cat") -> str:
    from inference_cli.client import Client

    return Client(server.url).submit(model, sample("tabby"))["id"]


def test_cancel_ends_queued_predictions_and_says_why_one_could_not_be(server, capsys):
    first, second = _submit(server), _submit(server)
    server.store.documents[second]["status"] = "running"
    code = cli.main(["--url", server.url, "cancel", first, second, "missing"])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{first}: cancelled" in out
    assert "not_cancellable" in err and "running" in err and "not_found" in err
    assert server.store.documents[first]["status"] == "cancelled"
    assert cli.main(["--url", server.url, "cancel", "--json", first]) == 0  # again: the same answer
    assert [p["status"] for p in json.loads(capsys.readouterr().out)["predictions"]] == ["cancelled"]


def test_list_follows_pages_and_filters(server, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    ids = [_submit(server, "cat") for _ in range(3)] + [_submit(server, "dog")]
    server.store.documents[ids[0]]["status"] = "failed"
    assert cli.main(["--url", server.url, "list", "--json", "--limit", "3"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == 3
    assert cli.main(["--url", server.url, "list", "--json", "--model", "cat", "--status", "queued"]) == 0
    listed = json.loads(capsys.readouterr().out)["predictions"]
    assert sorted(p["id"] for p in listed) == sorted(ids[1:3])
    assert cli.main(["--url", server.url, "list", "--model", "dog"]) == 0
    out = capsys.readouterr().out
    assert ids[3] in out and "1 predictions" in out and ids[1] not in out


def test_list_pages_through_more_than_one_api_page(server, capsys, monkeypatch):
    import inference_cli.client as client

    monkeypatch.setattr(client, "MAX_PAGE_SIZE", 2)
    ids = {_submit(server) for _ in range(5)}
    assert cli.main(["--url", server.url, "list", "--json", "--limit", "5"]) == 0
    assert {p["id"] for p in json.loads(capsys.readouterr().out)["predictions"]} == ids
