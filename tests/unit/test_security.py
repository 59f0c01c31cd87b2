"""Security at the edges, against in-memory fakes: callback targets, API keys and quotas,
Idempotency-Key, owner-only reads, Firestore-invalid ids."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from inference_contract import callback_targets
from prediction_api.auth import Authenticator, FileKeyStore, RateLimiter, new_key, revoke

from tests.images import converted, tabby_bytes
from tests.unit.fakes import FakeKeyStore
from tests.unit.test_api import NOW, World, assert_error

# Every kind of address a callback must never reach, even with loopback allowed.
FORBIDDEN = [
    "169.254.169.254",            # the metadata server
    "169.254.0.1",                # link-local
    "10.1.2.3", "172.16.0.1", "192.168.1.1",  # private
    "100.64.0.1",                 # CGNAT
    "224.0.0.251", "239.255.255.250",  # multicast
    "240.0.0.1", "255.255.255.255",    # reserved, broadcast
    "0.0.0.0",                    # unspecified
    "192.0.2.10", "198.18.0.1",   # documentation, benchmarking
    "fd00::1", "fc00::5",         # IPv6 ULA
    "fe80::1",                    # IPv6 link-local
    "fec0::1",                    # IPv6 site-local
    "ff02::1",                    # IPv6 multicast
    "::",                         # IPv6 unspecified
    "::ffff:169.254.169.254", "::ffff:127.0.0.1", "::ffff:10.0.0.1",  # IPv4-mapped
    "64:ff9b::a9fe:a9fe",         # NAT64 of the metadata server
    "2002:a9fe:a9fe::1",          # 6to4 of the metadata server
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_forbidden_addresses_are_refused_even_with_loopback_allowed(address):
    assert callback_targets.refusal(ipaddress.ip_address(address), allow_loopback=True)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert callback_targets.refusal(ipaddress.ip_address(address), allow_loopback=False) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_only_with_the_explicit_setting(address):
    assert callback_targets.refusal(ipaddress.ip_address(address), allow_loopback=False)
    assert callback_targets.refusal(ipaddress.ip_address(address), allow_loopback=True) is None


def _refused_callback(world: World, url: str):
    response = world.post_images(tabby_bytes(), callback_url=url)
    assert_error(response, 400, "invalid_request")
    assert "callback_url" in response.get_json()["error"]["message"]
    assert world.nothing_written()
    return response


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/computeMetadata/v1/",
    "https://169.254.169.254/computeMetadata/v1/",
    "https://metadata.google.internal/x",
    "https://METADATA.google.internal./x",
    "https://metadata/computeMetadata/v1/",
    "https://10.0.0.8/hook", "https://192.168.0.1/hook", "https://172.20.1.1/hook",
    "https://100.100.100.200/hook",
    "https://[fd12:3456::1]/hook", "https://[fe80::1]/hook", "https://[::ffff:169.254.169.254]/hook",
    "https://[::ffff:a9fe:a9fe]/hook",
    "https://0.0.0.0/hook", "https://224.0.0.1/hook",
    "https://internal.example/hook",   # resolves to 10.0.0.5
    "https://mixed.example/hook",      # one public address and one private
    "https://rebind6.example/hook",    # resolves to an IPv4-mapped metadata address
    "https://nowhere.example/hook",    # does not resolve
    "https://user:pw@cb.example/hook",  # credentials in the URL
    "https://cb.example:99999/hook",   # invalid port
    "ftp://cb.example/hook", "file:///etc/passwd", "gopher://cb.example/",
])
def test_bad_callback_targets_are_400_and_write_nothing_even_with_loopback_allowed(url):
    world = World(callback_allow_http=True, callback_allow_loopback=True)
    world.dns.table.update({"internal.example": ["10.0.0.5"], "mixed.example": ["93.184.215.14", "10.0.0.5"],
                            "rebind6.example": ["::ffff:169.254.169.254"]})
    _refused_callback(world, url)


def test_loopback_callbacks_only_with_the_setting():
    _refused_callback(World(callback_allow_http=True), "http://127.0.0.1:9999/hook")
    _refused_callback(World(callback_allow_http=True), "http://localhost:9999/hook")
    allowed = World(callback_allow_http=True, callback_allow_loopback=True)
    assert allowed.post_images(tabby_bytes(), callback_url="http://localhost:9999/hook").status_code == 202
    assert allowed.post_images(tabby_bytes(), callback_url="http://[::1]:9999/hook").status_code == 202


def test_a_public_https_callback_is_accepted_and_resolved_at_submit():
    world = World()
    response = world.post_images(tabby_bytes(), callback_url="https://cb.example/hook")
    assert response.status_code == 202
    assert world.dns.queries == ["cb.example"]


# ---- API keys and quotas -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keyed_world(rate: int = 60, **overrides):
    keys, clock = FakeKeyStore(), Clock()
    alice, record = new_key("alice", rate)
    keys.put(record)
    bob, record = new_key("bob", rate)
    keys.put(record)
    world = World(authenticator=Authenticator(keys, cache_seconds=30, monotonic=clock),
                  limiter=RateLimiter(monotonic=clock), **overrides)
    return world, keys, clock, alice, bob


def post_with(world: World, key: str | None, *images: bytes, **headers):
    images = images or (tabby_bytes(),)
    data = {"image": [(__import__("io").BytesIO(img), f"p{i}.jpg") for i, img in enumerate(images)]}
    if key:
        headers["X-API-Key"] = key
    return world.client.post("/v1/models/resnet50/predictions", data=data,
                             content_type="multipart/form-data", headers=headers)


@pytest.mark.parametrize("header", [None, "", "nonsense", "ik_000000000000_" + "A" * 43,
                                    "Bearer something", "ik_zzzzzzzzzzzz_" + "A" * 43])
def test_missing_malformed_or_unknown_keys_are_401_and_write_nothing(header):
    world, *_ = keyed_world()
    assert_error(post_with(world, header), 401, "unauthorized")
    assert_error(world.client.get("/v1/models", headers={"X-API-Key": header or ""}), 401, "unauthorized")
    assert world.nothing_written()


def test_a_key_with_a_wrong_secret_is_401():
    world, _, _, alice, _ = keyed_world()
    forged = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
    assert_error(post_with(world, forged), 401, "unauthorized")
    assert world.nothing_written()


def test_a_revoked_key_stops_within_the_cache_time():
    world, keys, clock, alice, _ = keyed_world()
    assert post_with(world, alice).status_code == 202
    revoke(keys, alice.split("_")[1])
    clock.now += 31
    assert_error(post_with(world, alice), 401, "unauthorized")


def test_health_needs_no_key_and_unknown_paths_are_404():
    world, *_ = keyed_world()
    assert world.client.get("/v1/health").status_code == 200
    assert world.client.get("/healthz").status_code == 200
    assert_error(world.client.get("/nope"), 404, "not_found")


def test_over_the_quota_is_429_with_retry_after_and_writes_nothing():
    world, _, clock, alice, bob = keyed_world(rate=3)
    for _ in range(3):
        assert post_with(world, alice).status_code == 202
    written = (dict(world.store.documents), list(world.publisher.messages), dict(world.uploads.objects))
    response = post_with(world, alice)
    assert_error(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert retry_after == 20  # 3 per minute: one token every 20 s
    assert response.get_json()["error"]["retry_after_seconds"] == retry_after
    assert (world.store.documents, world.publisher.messages, world.uploads.objects) == written
    # Another key has its own quota.
    assert post_with(world, bob).status_code == 202
    clock.now += retry_after
    assert post_with(world, alice).status_code == 202


def test_a_prediction_records_the_key_id_never_the_key_and_only_that_key_reads_it():
    world, keys, _, alice, bob = keyed_world()
    created = post_with(world, alice).get_json()
    document = world.store.documents[created["id"]]
    alice_id = alice.split("_")[1]
    assert document["api_key_id"] == alice_id
    assert alice not in repr(document) and alice.split("_", 2)[2] not in repr(document)
    assert keys.records[alice_id]["hash"] != alice and alice not in repr(keys.records)
    assert world.client.get(f"/v1/predictions/{created['id']}",
                            headers={"X-API-Key": alice}).status_code == 200
    other = world.client.get(f"/v1/predictions/{created['id']}", headers={"X-API-Key": bob})
    assert_error(other, 404, "not_found")
    # A long poll on another key's prediction is 404 at once too, never held.
    world.store.on_wait = {"status": "succeeded"}
    assert_error(world.client.get(f"/v1/predictions/{created['id']}?wait=5", headers={"X-API-Key": bob}),
                 404, "not_found")
    assert world.store.waited == []
    assert other.get_json() == world.client.get("/v1/predictions/never-was",
                                                headers={"X-API-Key": bob}).get_json() | {
        "error": {"code": "not_found", "message": f"no prediction with id {created['id']!r}"}}


def test_the_file_key_store_keeps_hashes_and_sees_new_keys_at_once(tmp_path):
    store = FileKeyStore(tmp_path / "keys.json")
    authenticator = Authenticator(store)
    plaintext, record = new_key("dev", 5)
    store.put(record)
    assert plaintext not in (tmp_path / "keys.json").read_text()
    assert authenticator.authenticate(plaintext).rate_per_minute == 5
    second, record = new_key("second", 7)
    FileKeyStore(tmp_path / "keys.json").put(record)  # another process (the key script) adds one
    assert authenticator.authenticate(second).name == "second"
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600


# ---- Firestore-invalid ids -------------------------------------------------------------------


@pytest.mark.parametrize("prediction_id", ["__x__", "__name__", "..", ".", "a" * 129, "a.b", "%2F", "x%00"])
def test_ids_firestore_refuses_are_404(prediction_id):
    world = World()

    class Refusing:  # Firestore answers such ids with an error the adapter makes a 503
        def get(self, _):
            raise AssertionError("the store must not be asked")

    world.service._store = Refusing()
    assert_error(world.client.get(f"/v1/predictions/{prediction_id}"), 404, "not_found")


# ---- Idempotency-Key -------------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_original_predictions():
    world, _, _, alice, _ = keyed_world()
    first = post_with(world, alice, tabby_bytes(), converted(tabby_bytes(), "PNG"),
                      **{"Idempotency-Key": "k-1"})
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    assert world.idempotency.reads == 0  # a key's first use: created, never read
    again = post_with(world, alice, tabby_bytes(), converted(tabby_bytes(), "PNG"),
                      **{"Idempotency-Key": "k-1"})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert len(world.store.documents) == 2 and len(world.publisher.messages) == 2


def test_a_different_body_under_the_same_key_is_409_and_writes_nothing():
    world, _, _, alice, _ = keyed_world()
    assert post_with(world, alice, **{"Idempotency-Key": "k-2"}).status_code == 202
    before = (dict(world.store.documents), list(world.publisher.messages), dict(world.uploads.objects))
    response = post_with(world, alice, converted(tabby_bytes(), "PNG"), **{"Idempotency-Key": "k-2"})
    assert_error(response, 409, "idempotency_conflict")
    assert (world.store.documents, world.publisher.messages, world.uploads.objects) == before


def test_idempotency_keys_belong_to_one_api_key_and_last_24_hours():
    clock = [NOW]
    keys, ticks = FakeKeyStore(), Clock()
    alice, record = new_key("alice", 100)
    keys.put(record)
    bob, record = new_key("bob", 100)
    keys.put(record)
    world = World(authenticator=Authenticator(keys, monotonic=ticks), limiter=RateLimiter(ticks),
                  clock=lambda: clock[0])
    first = post_with(world, alice, **{"Idempotency-Key": "shared"}).get_json()
    assert post_with(world, bob, **{"Idempotency-Key": "shared"}).get_json()["id"] != first["id"]
    clock[0] = NOW + timedelta(hours=23)
    assert post_with(world, alice, **{"Idempotency-Key": "shared"}).get_json()["id"] == first["id"]
    clock[0] = NOW + timedelta(hours=24, seconds=1)
    assert post_with(world, alice, **{"Idempotency-Key": "shared"}).get_json()["id"] != first["id"]


def test_a_retry_while_the_first_is_being_accepted_is_409_and_a_failed_first_frees_the_key():
    world = World()
    world.publisher.fail_after = 0
    response = world.client.post("/v1/models/cat/predictions", data=tabby_bytes(), content_type="image/jpeg",
                                 headers={"Idempotency-Key": "retry-me"})
    assert_error(response, 503, "backend_unavailable")
    assert world.idempotency.records == {}
    world.publisher.fail_after = None
    ok = world.client.post("/v1/models/cat/predictions", data=tabby_bytes(), content_type="image/jpeg",
                           headers={"Idempotency-Key": "retry-me"})
    assert ok.status_code == 202
    [(record_id, record)] = world.idempotency.records.items()
    assert record["state"] == "done" and record["prediction_ids"] == [ok.get_json()["id"]]
    # As if a first request with this key were still between its checks and its writes.
    world.idempotency.records[record_id] = {**record, "state": "pending"}
    busy = world.client.post("/v1/models/cat/predictions", data=tabby_bytes(), content_type="image/jpeg",
                             headers={"Idempotency-Key": "retry-me"})
    assert_error(busy, 409, "idempotency_conflict")


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "has space", "tab\there", "é"])
def test_invalid_idempotency_keys_are_400(key):
    world = World()
    response = world.client.post("/v1/models/cat/predictions", data=tabby_bytes(), content_type="image/jpeg",
                                 headers={"Idempotency-Key": key})
    assert_error(response, 400, "invalid_request")
    assert world.nothing_written()


def test_cors_lets_the_page_send_its_key_and_read_retry_after():
    world, *_ = keyed_world()
    preflight = world.client.options("/v1/models/cat/predictions", headers={
        "Origin": "http://allowed.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key"})
    assert preflight.status_code == 204
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Retry-After" in preflight.headers["Access-Control-Expose-Headers"]
