"""functions/main.py under functions-framework: what its own router refuses is JSON too."""

from __future__ import annotations

import functions_framework

from tests.conftest import ROOT


def test_the_frameworks_own_404s_are_json():
    app = functions_framework.create_app(target="api", source=str(ROOT / "functions" / "main.py"))
    client = app.test_client()
    for response in (client.get("/favicon.ico"), client.post("/v1/models/a%0Ab/predictions")):
        assert response.status_code == 404 and response.is_json, response.data
        assert response.get_json()["error"]["code"] == "not_found"
