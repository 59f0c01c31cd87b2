"""`inference jobs submit`'s INPUT and OUTPUT: what a folder uploads, what is refused before any request."""

from __future__ import annotations

import threading

import pytest
from inference_cli import job_inputs
from inference_cli import main as cli


class RecordingBucket:
    """Holds what was uploaded: object name -> (bytes, content type)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.lock = threading.Lock()

    def blob(self, name: str):
        bucket = self

        class Blob:
            def upload_from_filename(self, filename: str, content_type: str) -> None:
                with open(filename, "rb") as handle, bucket.lock:
                    bucket.objects[name] = (handle.read(), content_type)

        return Blob()


class RecordingStorage:
    def __init__(self) -> None:
        self.buckets: dict[str, RecordingBucket] = {}

    def bucket(self, name: str) -> RecordingBucket:
        return self.buckets.setdefault(name, RecordingBucket(name))


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"jpeg a")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "b.PNG").write_bytes(b"png b")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.jpg").write_bytes(b"hidden")
    return tmp_path


def test_a_folder_uploads_its_images_under_a_fresh_prefix_and_names_that_prefix(folder):
    storage = RecordingStorage()
    uploaded = []
    source = job_inputs.local_input(str(folder))
    uri = job_inputs.upload(source, "jobs-bucket", client=storage, concurrency=2, on_uploaded=uploaded.append)
    objects = storage.buckets["jobs-bucket"].objects
    prefix = uri.removeprefix("gs://jobs-bucket/")
    assert uri.startswith("gs://jobs-bucket/jobs-input/") and uri.endswith("/")
    assert set(objects) == {prefix + "a.jpg", prefix + "nested/b.PNG"}  # no text file, nothing hidden
    assert objects[prefix + "a.jpg"] == (b"jpeg a", "image/jpeg")
    assert objects[prefix + "nested/b.PNG"] == (b"png b", "image/png")
    assert sorted(path.name for path in uploaded) == ["a.jpg", "b.PNG"]
    again = job_inputs.upload(source, "jobs-bucket", client=storage)
    assert again != uri, "two submits of one folder must not share a prefix"


def test_a_local_manifest_is_uploaded_and_named_itself(tmp_path):
    manifest = tmp_path / "images.jsonl"
    manifest.write_text('"gs://photos/a.jpg"\n')
    storage = RecordingStorage()
    uri = job_inputs.upload(job_inputs.local_input(str(manifest)), "b", client=storage)
    assert uri.startswith("gs://b/jobs-input/") and uri.endswith("/images.jsonl")
    assert storage.buckets["b"].objects[uri.removeprefix("gs://b/")][0] == manifest.read_bytes()


@pytest.mark.parametrize(("argument", "said"), [
    ("/no/such/folder", "no such folder or file"),
    ("EMPTY", "no image files"),
])
def test_an_unusable_input_is_refused_in_one_line(tmp_path, argument, said):
    argument = str(tmp_path) if argument == "EMPTY" else argument
    with pytest.raises(job_inputs.InputError, match=said):
        job_inputs.local_input(argument)


@pytest.mark.parametrize("output", ["results/", "/tmp/results", "gs://", "https://example.com/out/"])
def test_output_must_be_a_gcs_prefix(output):
    with pytest.raises(job_inputs.InputError, match="OUTPUT must be a gs://"):
        job_inputs.check_output(output)
    assert job_inputs.check_output("gs://b/out/") == "gs://b/out/"


def test_submit_refuses_bad_arguments_with_exit_2_before_any_request(folder, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # rich wraps to the terminal
    # Nothing listens on this port: a request would fail differently (exit 1, "unreachable").
    url = "http://127.0.0.1:9"
    assert cli.main(["--url", url, "jobs", "submit", "--model", "cat", str(folder), "results/"]) == 2
    assert "OUTPUT must be a gs://" in capsys.readouterr().err
    missing = str(folder / "nope")
    assert cli.main(["--url", url, "jobs", "submit", "--model", "cat", missing, "gs://b/o/"]) == 2
    assert "no such folder or file" in capsys.readouterr().err


def test_a_refused_upload_is_one_line_naming_the_bucket(folder):
    from google.api_core.exceptions import Forbidden

    class RefusingStorage(RecordingStorage):
        def bucket(self, name: str):
            class Bucket:
                def blob(self, _name):
                    class Blob:
                        def upload_from_filename(self, *_args, **_kwargs):
                            raise Forbidden("caller does not have storage.objects.create access")

                    return Blob()

            return Bucket()

    with pytest.raises(job_inputs.UploadFailed, match=r"to gs://theirs: .*storage\.objects\.create"):
        job_inputs.upload(job_inputs.local_input(str(folder)), "theirs", client=RefusingStorage())
