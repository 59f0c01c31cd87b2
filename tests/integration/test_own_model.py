"""A model of a user's own, exported with `export_model.py NAME --from`, served and asked through the API."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import OWN_MODEL
from tests.integration.client import HEADERS, post_images, wait_final
from tests.own_models import MEAN_COLOUR_LABELS

pytestmark = pytest.mark.integration


def _image(rgb, format="PNG", size=(40, 30)) -> bytes:
    noise = np.random.default_rng(sum(rgb)).integers(0, 30, (size[1], size[0], 3))
    pixels = np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=format)
    return out.getvalue()


def test_an_own_model_answers_through_the_api_with_its_labels(stack):
    images = {"red": _image((220, 20, 30)), "green": _image((20, 200, 40), "JPEG"),
              "blue": _image((10, 30, 210), "GIF")}
    response = post_images(stack, OWN_MODEL, *[(f"{colour}.img", data, "application/octet-stream")
                                               for colour, data in images.items()])
    assert response.status_code == 202, response.text
    finals = [wait_final(p["status_url"], timeout=120) for p in response.json()["predictions"]]
    assert [f["status"] for f in finals] == ["succeeded"] * 3, finals
    for colour, final in zip(images, finals, strict=True):
        top = final["result"]["top_k"]
        assert top[0]["label"] == colour, (colour, top)
        assert [c["label"] for c in top] != [] and {c["label"] for c in top} <= set(MEAN_COLOUR_LABELS)
        assert final["result"]["weights"].startswith("own: model.keras (sha256 ")


def test_an_own_model_is_listed_with_its_weights(stack, capsys):
    listing = {m["name"]: m for m in requests.get(f"{stack.api_url}/v1/models", headers=HEADERS,
                                                  timeout=10).json()["models"]}
    own = listing[OWN_MODEL]
    assert own["kind"] == "classifier"
    assert [v["version"] for v in own["versions"]] == [1]
    assert own["versions"][0]["weights"].startswith("own: model.keras (sha256 ")
    from inference_cli.main import main as cli

    assert cli(["--url", stack.api_url, "--api-key", stack.api_key, "models", "--json"]) == 0
    printed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert printed[OWN_MODEL]["versions"][0]["weights"] == own["versions"][0]["weights"]
