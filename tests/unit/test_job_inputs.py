"""A bulk job's input and output names and its manifest, checked before anything is written."""

from __future__ import annotations

import pytest
from prediction_api.errors import InvalidManifest, InvalidRequest
from prediction_api.job_inputs import is_manifest, output_prefix, parse_gs, parse_manifest


def test_a_manifest_takes_gs_and_https_lines_bare_or_quoted_and_skips_blank_ones():
    data = b'gs://b/a.jpg\n"gs://b/dir/b.png"\n\n  https://example.com/c.jpg  \n'
    assert parse_manifest(data, "gs://b/m.jsonl") == ["gs://b/a.jpg", "gs://b/dir/b.png",
                                                      "https://example.com/c.jpg"]


def test_one_bad_line_fails_the_whole_manifest_naming_the_lines():
    data = b'gs://b/a.jpg\nhttp://example.com/x.jpg\n{"input": "gs://b/c.jpg"}\ngs://b\ngs://b/ok.jpg\n' \
           b'https://user:pw@example.com/y.jpg\n'
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest(data, "gs://b/m.jsonl")
    assert refused.value.details["lines"] == [2, 3, 4, 6]
    assert "line 2, 3, 4, 6" in refused.value.message and "nothing was started" in refused.value.message
    with pytest.raises(InvalidManifest):
        parse_manifest(b"\xff\xfe", "gs://b/m.jsonl")


@pytest.mark.parametrize("uri", ["https://b/x/", "gs://", "gs:///x", "gs://UPPER/x", "gs://a/x\n", 42,
                                 "gs://b\x00c/x", "gs://-bad/x"])
def test_names_cloud_storage_would_refuse_are_a_400(uri):
    with pytest.raises(InvalidRequest):
        parse_gs(uri, "input")


def test_prefixes_manifests_and_outputs():
    assert not is_manifest(parse_gs("gs://bucket/photos/", "input"))
    assert is_manifest(parse_gs("gs://bucket/list.JSONL", "input"))
    assert is_manifest(parse_gs("gs://bucket/list.txt", "input"))
    assert output_prefix("gs://bucket/out").uri == "gs://bucket/out/"
    assert output_prefix("gs://bucket").uri == "gs://bucket/"


def test_a_job_takes_its_images_from_the_keys_quota_and_a_big_one_leaves_it_in_debt():
    from prediction_api.auth import ApiKey, RateLimiter
    from prediction_api.errors import TooManyRequests

    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    key = ApiKey("k", "jobs", rate_per_minute=60)
    limiter.take(key)  # the submit's own request
    limiter.take(key, 30, already_taken=1)  # a job of 30 images: 29 more
    limiter.take(key)
    with pytest.raises(TooManyRequests):
        limiter.take(key, 40, already_taken=0)  # 30 left, 40 asked: refused, nothing taken
    limiter.take(key, 29)  # exactly what is left
    now[0] = 60.0  # refilled
    limiter.take(key)
    limiter.take(key, 100, already_taken=1)  # bigger than the bucket: a full one, then in debt
    with pytest.raises(TooManyRequests) as refused:
        limiter.take(key)
    assert refused.value.retry_after >= 40
