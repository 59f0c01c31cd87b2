"""Hostile input at the API's edges (issue 19): malformed callback URLs, decompression
bombs, process-wide warning state, floods of unknown keys, bodies without a length."""

from __future__ import annotations

import io
import threading
import warnings

import pytest
from flask import Response
from hypothesis import HealthCheck, given, settings
from inference_contract.image_size import DeclaredSize, declared_size, over_budget
from PIL import Image
from prediction_api.auth import Authenticator, RateLimiter, new_key
from prediction_api.bodies import read_bounded
from prediction_api.config import Settings
from prediction_api.errors import PayloadTooLarge
from prediction_api.failed_auth import FailureLimiter, client_group
from prediction_api.images import validate_image
from werkzeug.test import EnvironBuilder

from scripts import image_bombs
from tests.callback_urls import MALFORMED, malformed_callback_urls
from tests.images import converted, tabby_bytes
from tests.unit.fakes import FakeKeyStore
from tests.unit.test_api import World, assert_error
from tests.unit.test_security import Clock

# ---- callback URLs --------------------------------------------------------------------------


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_callback_authority_is_400_and_writes_nothing(url):
    world = World(callback_allow_http=True, callback_allow_loopback=True)
    for response in (world.post_images(tabby_bytes(), callback_url=url),
                     world.client.post("/v1/models/cat/predictions", data=tabby_bytes(),
                                       content_type="image/jpeg", query_string={"callback_url": url})):
        assert_error(response, 400, "invalid_request")
        assert "callback_url" in response.get_json()["error"]["message"]
    assert world.nothing_written()


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(url=malformed_callback_urls)
def test_fuzzed_malformed_callback_authorities_are_400(url):
    world = World(callback_allow_http=True)
    assert_error(world.post_images(tabby_bytes(), callback_url=url), 400, "invalid_request")


# ---- the pixel budget -----------------------------------------------------------------------


def _animation(image_format: str, frames: int = 5, size: tuple[int, int] = (30, 20)) -> bytes:
    images = [Image.new("RGB", size, (40 * i, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, image_format, save_all=True, append_images=images[1:])
    return out.getvalue()


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "GIF", "BMP", "WEBP"])
def test_every_format_declares_its_size(image_format):
    assert declared_size(converted(tabby_bytes(), image_format)) == DeclaredSize(image_format, 335, 500)


@pytest.mark.parametrize("image_format", ["GIF", "PNG", "WEBP"])
def test_every_frame_of_an_animation_is_counted(image_format):
    size = declared_size(_animation(image_format))
    assert (size.width, size.height, size.frames, size.pixels) == (30, 20, 5, 3000)


def test_stray_bytes_between_jpeg_segments_are_skipped_as_decoders_do():
    photo = tabby_bytes()
    after_first_segment = 4 + int.from_bytes(photo[4:6], "big")
    with_junk = photo[:after_first_segment] + b"\x00\x00" + photo[after_first_segment:]
    assert Image.open(io.BytesIO(with_junk)).size == (335, 500)
    assert declared_size(with_junk) == DeclaredSize("JPEG", 335, 500)


def test_a_gif_frame_beyond_the_screen_grows_the_canvas():
    bomb = bytearray(image_bombs.gif(10, 10, 1))
    bomb[bomb.index(b"\x2c") + 5:bomb.index(b"\x2c") + 9] = b"\x40\x1f\x40\x1f"  # an 8000x8000 frame
    assert declared_size(bytes(bomb)).pixels == 8000 * 8000


BOMBS = {
    "PNG 9000x9000": image_bombs.png(9000, 9000),
    "GIF 6000x6000 screen, 24 one-pixel frames": image_bombs.gif(6000, 6000, 24),
    "PNG header 65535x65535": image_bombs.png_header(65535, 65535),
    "JPEG header 65535x65535": image_bombs.jpeg_header(65535, 65535),
    "APNG 2000x2000, 20 frames": image_bombs.png(2000, 2000, frames=20),
}


@pytest.mark.parametrize("name", BOMBS)
def test_a_bomb_is_400_naming_the_limit_and_writes_nothing(name):
    world = World()
    multipart = world.post_images(BOMBS[name])
    raw = world.client.post("/v1/models/cat/predictions", data=BOMBS[name], content_type="image/png")
    for response in (multipart, raw):
        assert_error(response, 400, "invalid_image")
        error = response.get_json()["error"]
        assert "the limit is 40,000,000 pixels" in error["message"] and error["limit_pixels"] == 40_000_000
    assert world.nothing_written()


@pytest.mark.parametrize("image_format", ["GIF", "PNG", "WEBP"])
def test_animations_are_refused_by_their_frames_together(image_format):
    animation = _animation(image_format)  # 600 pixels a frame, 3000 in all
    assert_error(World(max_image_pixels=2999).post_images(animation), 400, "invalid_image")
    assert World(max_image_pixels=3000).post_images(animation).status_code == 202


def test_an_image_at_the_budget_is_accepted_and_one_pixel_over_is_not():
    assert World(max_image_pixels=335 * 500).post_images(tabby_bytes()).status_code == 202
    refused = World(max_image_pixels=335 * 500 - 1).post_images(tabby_bytes())
    assert_error(refused, 400, "invalid_image")
    assert "335x500" in refused.get_json()["error"]["message"]


def test_over_budget_wording():
    assert over_budget(DeclaredSize("GIF", 6000, 6000, 24), 40_000_000) == (
        "declares 6000x6000 pixels in 24 frames (864,000,000 in all); "
        "the limit is 40,000,000 pixels per image")
    assert over_budget(DeclaredSize("PNG", 10, 10), 100) is None


def test_validation_leaves_the_process_wide_warning_filters_alone():
    """Under the API's threads a catch_warnings() in one request changes every other's filters."""
    baseline = warnings.filters
    seen_changed = []
    images = [converted(tabby_bytes(), "PNG"), image_bombs.png_header(10000, 10000)]
    done = threading.Event()

    def validate_many():
        for i in range(600):
            try:
                validate_image(images[i % 2], 10 << 20)
            except Exception:  # the bomb is refused: that is checked below
                pass
        done.set()

    worker = threading.Thread(target=validate_many)
    worker.start()
    while not done.is_set():
        if warnings.filters is not baseline:
            seen_changed.append(True)
    worker.join()
    assert not seen_changed


def test_the_budget_holds_whatever_warning_filters_the_process_has():
    bomb = image_bombs.png_header(10000, 10000)  # between Pillow's warning and error thresholds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception, match="the limit is 40,000,000 pixels"):
            validate_image(bomb, 10 << 20)


# ---- bodies ---------------------------------------------------------------------------------


class EndlessStream(io.RawIOBase):
    """A body that never ends, counting what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = bytes(len(buffer))
        self.read_bytes += len(buffer)
        return len(buffer)


def test_a_body_is_read_to_one_byte_past_the_limit_and_no_further():
    stream = EndlessStream()
    with pytest.raises(PayloadTooLarge):
        read_bounded(stream, 1_000_000)
    assert stream.read_bytes == 1_000_001
    assert read_bounded(io.BytesIO(b"x" * 1000), 1000) == b"x" * 1000


def test_a_raw_body_without_content_length_is_413_after_the_limit():
    """As a server that de-chunks a body hands it over: no CONTENT_LENGTH, wsgi.input_terminated."""
    world = World(max_image_bytes=50_000)
    stream = EndlessStream()
    environ = EnvironBuilder(path="/v1/models/cat/predictions", method="POST", content_type="image/png",
                             headers={"Transfer-Encoding": "chunked"}).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": stream, "wsgi.input_terminated": True})
    response = Response.from_app(world.client.application, environ, buffered=True)
    assert_error(response, 413, "payload_too_large")
    assert stream.read_bytes == 50_001
    assert world.nothing_written()


# ---- failed key lookups ---------------------------------------------------------------------


def limited_world(per_minute: int = 5, hops: int = 1, negative_seconds: float = 10.0):
    keys, clock = FakeKeyStore(), Clock()
    real, record = new_key("real", 1000)
    keys.put(record)
    authenticator = Authenticator(keys, cache_seconds=30, monotonic=clock,
                                  negative_cache_seconds=negative_seconds,
                                  failures=FailureLimiter(per_minute, monotonic=clock))
    world = World(authenticator=authenticator, limiter=RateLimiter(clock), trusted_proxy_hops=hops)
    return world, keys, clock, real


def unknown_key() -> str:
    return new_key("never stored")[0]


def get_models(world: World, key: str, address: str = "203.0.113.7", **headers):
    return world.client.get("/v1/models", headers={"X-API-Key": key, **headers},
                            environ_base={"REMOTE_ADDR": address})


def test_an_unknown_id_is_read_once_while_it_is_cached_and_again_after():
    world, keys, clock, _ = limited_world(per_minute=100)
    key = unknown_key()
    for _ in range(3):
        assert_error(get_models(world, key), 401, "unauthorized")
    assert keys.reads == 1
    clock.now += 11
    assert_error(get_models(world, key), 401, "unauthorized")
    assert keys.reads == 2


def test_the_unknown_id_table_is_bounded():
    keys = FakeKeyStore()
    authenticator = Authenticator(keys, negative_cache_size=3)
    ids = [unknown_key() for _ in range(4)]
    for key in ids:
        with pytest.raises(Exception, match="unknown"):
            authenticator.authenticate(key)
    with pytest.raises(Exception, match="unknown"):
        authenticator.authenticate(ids[0])  # pushed out by the fourth: read again
    assert keys.reads == 5


def test_past_its_failures_an_address_gets_429_without_reads_and_a_real_key_still_works():
    world, keys, clock, real = limited_world(per_minute=5)
    assert get_models(world, real).status_code == 200  # seen succeed here once
    clock.now += 31  # and out of the cache again
    for _ in range(5):
        assert_error(get_models(world, unknown_key()), 401, "unauthorized")
    reads = keys.reads
    flood = [get_models(world, unknown_key()) for _ in range(50)]
    assert {r.status_code for r in flood} == {429}
    assert int(flood[0].headers["Retry-After"]) == 12  # 5 a minute: one every 12 s
    assert keys.reads == reads
    assert get_models(world, real).status_code == 200  # the real key is looked up and works
    assert_error(get_models(world, unknown_key(), address="198.51.100.1"), 401, "unauthorized")
    clock.now += 12
    assert_error(get_models(world, unknown_key()), 401, "unauthorized")


def test_a_real_key_new_to_this_instance_waits_while_its_address_is_limited():
    world, keys, clock, _ = limited_world(per_minute=2)
    for _ in range(2):
        get_models(world, unknown_key())
    fresh, record = new_key("fresh", 100)
    keys.put(record)
    assert_error(get_models(world, fresh), 429, "rate_limited")
    assert get_models(world, fresh, address="198.51.100.1").status_code == 200
    clock.now += 30
    assert get_models(world, fresh).status_code == 200


def test_the_client_is_the_last_forwarded_address_so_spoofed_entries_do_not_escape_the_limit():
    world, _, _, _ = limited_world(per_minute=3, hops=1)
    for i in range(3):
        get_models(world, unknown_key(), **{"X-Forwarded-For": f"10.0.0.{i}, 203.0.113.50"})
    assert_error(get_models(world, unknown_key(), **{"X-Forwarded-For": "10.9.9.9, 203.0.113.50"}),
                 429, "rate_limited")
    # Without a trusted proxy the header is the client's own word: ignored.
    untrusting, _, _, _ = limited_world(per_minute=1, hops=0)
    get_models(untrusting, unknown_key(), address="192.0.2.1", **{"X-Forwarded-For": "203.0.113.1"})
    assert_error(get_models(untrusting, unknown_key(), address="192.0.2.1",
                            **{"X-Forwarded-For": "203.0.113.2"}), 429, "rate_limited")


def test_an_ipv6_client_is_its_64():
    assert client_group("2001:db8:1:2::1") == client_group("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_group("2001:db8:1:3::1") != client_group("2001:db8:1:2::1")
    assert client_group("::ffff:203.0.113.7") == client_group("203.0.113.7") == "203.0.113.7"


def test_the_limits_are_settings():
    settings = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "UPLOADS_BUCKET": "b", "MODELS": "m",
                                  "MAX_IMAGE_PIXELS": "1000", "API_KEY_NEGATIVE_CACHE_SECONDS": "3",
                                  "AUTH_FAILURES_PER_MINUTE": "7", "TRUSTED_PROXY_HOPS": "2"})
    assert (settings.max_image_pixels, settings.api_key_negative_cache_seconds,
            settings.auth_failures_per_minute, settings.trusted_proxy_hops) == (1000, 3, 7, 2)
    defaults = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "UPLOADS_BUCKET": "b", "MODELS": "m"})
    assert (defaults.max_image_pixels, defaults.trusted_proxy_hops) == (40_000_000, 1)


def test_missing_or_malformed_keys_cost_nothing_and_do_not_count():
    world, keys, _, _ = limited_world(per_minute=1)
    for header in ("", "nonsense", "ik_short"):
        for _ in range(5):
            assert_error(get_models(world, header), 401, "unauthorized")
    assert keys.reads == 0
    assert_error(get_models(world, unknown_key()), 401, "unauthorized")  # the one failure allowed
    assert_error(get_models(world, unknown_key()), 429, "rate_limited")
