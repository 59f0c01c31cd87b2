"""Hostile input against the running stack (issue 19): malformed callback URLs, decompression
bombs, 16 images near the pixel budget, a flood of unknown keys, a chunked body past the limit."""

from __future__ import annotations

import http.client
import io
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from scripts import image_bombs
from tests.callback_urls import MALFORMED
from tests.images import tabby_bytes
from tests.integration.client import HEADERS, post_images, wait_final
from tests.integration.test_pipeline import _bucket_objects, _prediction_ids
from tests.integration.test_security import probe  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def _nothing_written_since(stack, probe, objects, predictions) -> None:  # noqa: F811
    assert _bucket_objects(stack) == objects and _prediction_ids(stack) == predictions
    assert probe() <= set(predictions)


def test_malformed_callback_urls_are_400_and_write_nothing(stack, probe):  # noqa: F811
    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    for url in MALFORMED:
        response = post_images(stack, "tiny-test", ("t.jpg", tabby_bytes(), "image/jpeg"), callback_url=url)
        assert response.status_code == 400, f"{url}: {response.status_code} {response.text}"
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and "callback_url" in error["message"], (url, error)
    _nothing_written_since(stack, probe, objects, predictions)


BOMBS = [("9000x9000.png", image_bombs.png(9000, 9000), "image/png"),
         ("6000x6000-screen.gif", image_bombs.gif(6000, 6000, 24), "image/gif"),
         ("65535x65535.png", image_bombs.png_header(65535, 65535), "image/png"),
         ("65535x65535.jpg", image_bombs.jpeg_header(65535, 65535), "image/jpeg")]


def test_bombs_are_400_naming_the_limit_and_write_nothing(stack, probe):  # noqa: F811
    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    for name, data, content_type in BOMBS:
        for response in (post_images(stack, "tiny-test", (name, data, content_type)),
                         requests.post(f"{stack.api_url}/v1/models/tiny-test/predictions", data=data,
                                       headers={"Content-Type": content_type, **HEADERS}, timeout=30)):
            assert response.status_code == 400, f"{name}: {response.status_code} {response.text}"
            error = response.json()["error"]
            assert error["code"] == "invalid_image" and "the limit is 40,000,000 pixels" in error["message"]
    _nothing_written_since(stack, probe, objects, predictions)


def test_sixteen_images_just_under_the_budget_in_one_request_all_succeed(stack):
    side = 6324  # 39,992,976 pixels
    jpeg = io.BytesIO()
    Image.new("L", (side, side), 90).save(jpeg, "JPEG", quality=80)
    images = [(f"{i}.png", image_bombs.png(side, side), "image/png") for i in range(8)] + \
        [(f"{i}.jpg", jpeg.getvalue(), "image/jpeg") for i in range(8)]
    response = post_images(stack, "efficientnet-lite0", *images)
    assert response.status_code == 202, response.text
    for accepted in response.json()["predictions"]:
        final = wait_final(accepted["status_url"], timeout=240)
        assert final["status"] == "succeeded", final


def test_a_flood_of_unknown_keys_from_one_address_turns_to_429_and_its_known_key_still_works(stack):
    # The stack's API trusts one proxy hop, as in the cloud: X-Forwarded-For names the client,
    # so this flood is limited apart from the other tests' 127.0.0.1.
    client = {"X-Forwarded-For": "198.51.100.77"}
    assert requests.get(f"{stack.api_url}/v1/models", headers={**HEADERS, **client}, timeout=10).ok
    answers = []
    for i in range(30):
        unknown = f"ik_{i:012x}_{'A' * 43}"
        answers.append(requests.get(f"{stack.api_url}/v1/models", headers={"X-API-Key": unknown, **client},
                                    timeout=10))
    statuses = [a.status_code for a in answers]
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}, statuses
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    known = requests.get(f"{stack.api_url}/v1/models", headers={**HEADERS, **client}, timeout=10)
    assert known.status_code == 200, known.text


def test_a_chunked_body_past_the_limit_is_413_and_the_server_keeps_serving(stack):
    address = urlsplit(stack.api_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    connection.putrequest("POST", "/v1/models/tiny-test/predictions")
    for name, value in {"Content-Type": "image/png", "Transfer-Encoding": "chunked", **HEADERS}.items():
        connection.putheader(name, value)
    connection.endheaders()
    chunk = b"\x89PNG" + bytes((64 << 10) - 4)
    for _ in range(20 * 16):  # 20 MiB
        connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 413, body
    assert b'"payload_too_large"' in body
    assert requests.get(f"{stack.api_url}/v1/models", headers=HEADERS, timeout=10).status_code == 200
