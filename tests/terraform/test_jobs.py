"""What bulk jobs need in Terraform: each model's jobs lane, the jobs bucket and its grants, the indexes.

Names are evaluated by the real terraform binary from the contract's naming.json
(no provider needed) and compared with inference_contract.naming; the rest is
asserted on the parsed HCL, and the model services' request timeout on the real
model_service locals (ModelsEvaluator).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from inference_contract import naming

from .conftest import (
    MODULES_DIR,
    REPO_ROOT,
    TERRAFORM_DIR,
    blocks_by_name,
    dynamic_blocks,
    evaluate_naming,
    load_module,
    only,
    resources,
    sample_models,
    string_leaves,
)

ROOT = load_module(TERRAFORM_DIR)
JOBS = load_module(MODULES_DIR / "job_routing")
NAMING = json.loads((REPO_ROOT / "contract" / "inference_contract" / "naming.json").read_text())
MODELS = ("resnet50", "efficientnet-lite0", "cat")
_NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

_NAMING_OUTPUTS = """
variable "model_name" {
  type = string
}

output "names" {
  value = {
    topic             = local.topic_name
    push_subscription = local.push_subscription_name
    dead_letter_topic = local.dead_letter_topic_name
  }
}
"""


@pytest.fixture(scope="module")
def jobs_naming(terraform_bin, tmp_path_factory) -> dict:
    """model name -> the names job_routing/naming.tf computes for it."""
    return evaluate_naming(terraform_bin, tmp_path_factory.mktemp("tf-jobs-naming"), "job_routing",
                           _NAMING_OUTPUTS, MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_terraform_names_the_jobs_lane_as_the_contract_does(jobs_naming, model):
    names = jobs_naming[model]
    assert names["topic"] == naming.jobs_topic_name(model)
    assert names["push_subscription"] == naming.jobs_push_subscription_name(model)
    assert names["dead_letter_topic"] == naming.jobs_topic_name(model) + NAMING["dead_letter_topic_suffix"]
    # A lane of its own: nothing shared with the model's interactive topic and subscription.
    assert not set(names.values()) & {naming.topic_name(model), naming.push_subscription_name(model),
                                      naming.dead_letter_topic_name(model)}


def test_the_jobs_resources_take_their_names_from_naming_tf():
    topics = resources(JOBS, "google_pubsub_topic")
    assert topics[("google_pubsub_topic", "jobs")]["name"] == "${local.topic_name}"
    assert topics[("google_pubsub_topic", "dead_letter")]["name"] == "${local.dead_letter_topic_name}"
    subscriptions = resources(JOBS, "google_pubsub_subscription")
    assert set(subscriptions) == {("google_pubsub_subscription", "push"),
                                  ("google_pubsub_subscription", "dead_letter")}
    assert subscriptions[("google_pubsub_subscription", "push")]["name"] == "${local.push_subscription_name}"
    kept = subscriptions[("google_pubsub_subscription", "dead_letter")]
    assert kept["name"] == "${local.dead_letter_topic_name}"
    for path, text in string_leaves(JOBS.get("resource", [])):
        assert "jobs-" not in text and "predictions-" not in text, f"a literal name at {path}: {text}"


# --- the lane ---------------------------------------------------------------------------


def test_one_jobs_lane_per_model_wired_to_that_models_service():
    call = blocks_by_name(ROOT, "module")["job_routing"]
    assert call["source"] == "./modules/job_routing"
    assert call["for_each"] == "${var.models}"
    assert call["model_name"] == "${each.key}"
    assert call["service_uri"] == "${module.model_service[each.key].service_uri}"
    assert call["model_service_account"] == "${module.model_service[each.key].service_account_email}"
    # The model's own push identity, which holds run.invoker on that one service only.
    assert call["push_service_account"] == "${module.model_routing[each.key].push_service_account_email}"
    assert call["ack_deadline_seconds"] == "${each.value.jobs_ack_deadline_seconds}"
    assert call["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert call["jobs_bucket"] == "${module.storage.jobs_bucket}"
    assert call["publisher_service_account"] == "${module.api_function.service_account_email}"
    assert call["pubsub_service_agent"] == "${local.pubsub_service_agent}"


def test_jobs_push_subscription_reaches_the_jobs_path_with_oidc_retry_and_dead_letter():
    push = resources(JOBS)[("google_pubsub_subscription", "push")]
    assert push["topic"] == "${google_pubsub_topic.jobs.id}"
    assert push["ack_deadline_seconds"] == "${var.ack_deadline_seconds}"
    config = only(push["push_config"])
    assert config["push_endpoint"] == "${var.service_uri}${var.jobs_path}"
    assert blocks_by_name(JOBS, "variable")["jobs_path"]["default"] == "/jobs"
    oidc = only(config["oidc_token"])
    assert oidc == {"service_account_email": "${var.push_service_account}", "audience": "${var.service_uri}"}
    assert set(only(push["retry_policy"])) == {"minimum_backoff", "maximum_backoff"}
    dead_letter = only(push["dead_letter_policy"])
    assert dead_letter["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert dead_letter["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert only(push["expiration_policy"])["ttl"] == "", "a rarely used model's subscription must not expire"


def test_dead_lettered_shards_are_kept_for_inspection():
    kept = resources(JOBS)[("google_pubsub_subscription", "dead_letter")]
    assert kept["topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert "push_config" not in kept  # a pull subscription: it keeps what it is given
    assert kept["message_retention_duration"] == "${var.dead_letter_retention}"
    assert blocks_by_name(JOBS, "variable")["dead_letter_retention"]["default"] == "604800s"
    assert only(kept["expiration_policy"])["ttl"] == ""
    routing = resources(JOBS)
    publisher = routing[("google_pubsub_topic_iam_member", "dead_letter_publisher")]
    assert publisher["topic"] == "${google_pubsub_topic.dead_letter.name}"
    assert (publisher["role"], publisher["member"]) == (
        "roles/pubsub.publisher", "serviceAccount:${var.pubsub_service_agent}")
    subscriber = routing[("google_pubsub_subscription_iam_member", "source_subscriber")]
    assert subscriber["subscription"] == "${google_pubsub_subscription.push.name}"
    assert (subscriber["role"], subscriber["member"]) == (
        "roles/pubsub.subscriber", "serviceAccount:${var.pubsub_service_agent}")


def test_jobs_lane_grants_no_invoker_and_nothing_project_wide():
    for (rtype, name), body in resources(JOBS).items():
        assert not rtype.startswith("google_project_iam"), name
        if rtype.endswith("_iam_member"):
            assert body["role"] != "roles/run.invoker", name


def test_the_api_publishes_shards():
    publisher = resources(JOBS)[("google_pubsub_topic_iam_member", "api_publisher")]
    assert publisher["topic"] == "${google_pubsub_topic.jobs.name}"
    assert publisher["role"] == "roles/pubsub.publisher"
    assert publisher["member"] == "serviceAccount:${var.publisher_service_account}"


# --- the jobs bucket and who may use it ---------------------------------------------------


def test_jobs_bucket_is_private_uniform_and_expires_its_objects():
    storage = load_module(MODULES_DIR / "storage")
    bucket = resources(storage)[("google_storage_bucket", "jobs")]
    assert bucket["name"] == "${var.project_id}-jobs"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    rule = only(bucket["lifecycle_rule"])
    assert only(rule["condition"])["age"] == "${var.jobs_retention_days}"
    assert only(rule["action"])["type"] == "Delete"
    assert blocks_by_name(ROOT, "module")["storage"]["jobs_retention_days"] == "${var.jobs_retention_days}"
    assert blocks_by_name(ROOT, "output")["jobs_bucket"]["value"] == "${module.storage.jobs_bucket}"


def test_model_service_reads_inputs_and_creates_results_in_the_jobs_bucket_only():
    grants = {(body["bucket"], body["role"], body["member"])
              for (rtype, _), body in resources(JOBS).items() if rtype == "google_storage_bucket_iam_member"}
    member = "serviceAccount:${var.model_service_account}"
    # Create, never overwrite or delete: a shard's results object is written once.
    assert grants == {("${var.jobs_bucket}", "roles/storage.objectViewer", member),
                      ("${var.jobs_bucket}", "roles/storage.objectCreator", member)}


def test_api_lists_reads_and_probes_the_jobs_bucket():
    function = resources(load_module(MODULES_DIR / "api_function"))
    grant = function[("google_storage_bucket_iam_member", "jobs")]
    assert grant["bucket"] == "${var.jobs_bucket}"
    assert grant["role"] == "roles/storage.objectUser"
    assert grant["member"] == "${google_service_account.api.member}"
    assert blocks_by_name(ROOT, "module")["api_function"]["jobs_bucket"] == "${module.storage.jobs_bucket}"


# --- the model service's request timeout covers a shard ---------------------------------------


@pytest.mark.parametrize(("ack", "jobs_ack", "timeout"), [
    (None, None, "300s"),  # the defaults: 60 s interactive, 300 s a shard
    (60, 450, "450s"),
    (600, 120, "600s"),
])
def test_cloud_run_timeout_is_the_longer_of_the_two_ack_deadlines(models_evaluator, ack, jobs_ack, timeout):
    models = sample_models()
    for key, value in (("ack_deadline_seconds", ack), ("jobs_ack_deadline_seconds", jobs_ack)):
        if value is not None:
            models["cat"][key] = value
    template = models_evaluator.evaluate(models)["cat"]["template"]
    assert template["timeout"] == timeout


# --- Firestore: what the job documents need -------------------------------------------------


FIRESTORE = load_module(MODULES_DIR / "firestore")


def _firestore_default(name: str) -> str:
    return blocks_by_name(FIRESTORE, "variable")[name]["default"]


def test_collections_are_the_contracts():
    from inference_contract import jobs

    assert _firestore_default("jobs_collection") == jobs.JOBS_COLLECTION
    assert _firestore_default("job_shards_collection") == jobs.SHARDS_COLLECTION


def test_job_and_shard_documents_expire_by_ttl():
    from inference_contract import jobs

    fields = resources(FIRESTORE, "google_firestore_field")
    for name, collection in (("job_ttl", "${var.jobs_collection}"),
                             ("job_shard_ttl", "${var.job_shards_collection}")):
        field = fields[("google_firestore_field", name)]
        assert (field["collection"], field["field"]) == (collection, "${var.ttl_field}"), name
        assert field["ttl_config"] == [{}], name
    # The field the policy reads is one the contract's documents carry.
    ttl_field = _firestore_default("ttl_field")
    job = jobs.new_job(job_id="j", model="cat", now=_NOW, expire_at=_NOW, input_uri="gs://b/in/",
                       output="gs://b/out/", callback_url=None, api_key_id="k", total=1, shard_count=1,
                       shard_size=100)
    shard = jobs.new_shard(job_id="j", shard=0, model="cat", inputs=["gs://b/in/a.jpg"], now=_NOW,
                           expire_at=_NOW, redeliver_after=timedelta(seconds=60))
    assert ttl_field in job and ttl_field in shard


def test_a_shards_input_list_is_not_indexed():
    from inference_contract import jobs

    exempt = resources(FIRESTORE, "google_firestore_field")[("google_firestore_field", "job_shard_inputs")]
    assert exempt["collection"] == "${var.job_shards_collection}"
    assert exempt["field"] == "${var.job_shard_inputs_field}"
    assert exempt["index_config"] == [{}], "an empty index_config is what exempts the field"
    shard = jobs.new_shard(job_id="j", shard=0, model="cat", inputs=["gs://b/in/a.jpg"], now=_NOW,
                           expire_at=_NOW, redeliver_after=timedelta(seconds=60))
    assert shard[_firestore_default("job_shard_inputs_field")] == ["gs://b/in/a.jpg"]


def test_firestore_field_resources_are_applied_one_at_a_time():
    fields = resources(FIRESTORE, "google_firestore_field")
    chain = {name: body.get("depends_on", []) for (_, name), body in fields.items()}
    assert chain["job_ttl"] == ["${google_firestore_field.idempotency_ttl}"]
    assert chain["job_shard_ttl"] == ["${google_firestore_field.job_ttl}"]
    assert chain["job_shard_inputs"] == ["${google_firestore_field.job_shard_ttl}"]


class _RecordingQuery:
    """Stands in for a Firestore collection: records the query the job store builds, returns nothing."""

    def __init__(self) -> None:
        self.equalities: list[str] = []
        self.orders: list[tuple[str, str]] = []

    def collection(self, name: str) -> _RecordingQuery:
        return self

    def where(self, *, filter) -> _RecordingQuery:  # noqa: A002 (the client's keyword)
        assert filter.op_string == "==", filter.op_string
        self.equalities.append(filter.field_path)
        return self

    def order_by(self, field: str, direction: str) -> _RecordingQuery:
        self.orders.append((field, direction))
        return self

    def start_after(self, cursor) -> _RecordingQuery:
        return self

    def limit(self, count: int) -> _RecordingQuery:
        return self

    def stream(self):
        return iter(())


def _job_listing_queries() -> set[tuple[tuple[str, str], ...]]:
    """The composite index each query of FirestoreJobStore.list_owned needs: its equality fields
    ascending, then its ordering (Firestore appends __name__ itself)."""
    from prediction_api.job_store import FirestoreJobStore

    wanted = set()
    for status in (None, "running"):
        recorder = _RecordingQuery()
        FirestoreJobStore(recorder).list_owned("key-1", status, 10, None)
        orders = tuple(order for order in recorder.orders if order[0] != "__name__")
        wanted.add(tuple((field, "ASCENDING") for field in recorder.equalities) + orders)
    return wanted


def _declared_job_indexes() -> set[tuple[tuple[str, str], ...]]:
    index = resources(FIRESTORE, "google_firestore_index")[("google_firestore_index", "job_listing")]
    assert index["for_each"] == "${local.job_listing_indexes}"
    assert index["collection"] == "${var.jobs_collection}"
    content = only(dynamic_blocks(index)["fields"]["content"])
    assert content["field_path"] == "${fields.value}"
    ordering = only(index["fields"])
    listing = {}
    for block in FIRESTORE["locals"]:
        listing.update(block.get("job_listing_indexes", {}))
    last = ((ordering["field_path"], ordering["order"]),)
    return {tuple((field, content["order"]) for field in fields) + last for fields in listing.values()}


def test_every_job_listing_query_has_its_composite_index_and_no_index_is_unused():
    queries = _job_listing_queries()
    assert len(queries) == 2
    assert _declared_job_indexes() == queries


def test_jobs_dead_letters_are_charted_and_alerted_on_but_not_their_backlogs_age():
    monitoring = load_module(MODULES_DIR / "monitoring")
    settings = only(monitoring["locals"])
    assert settings["jobs_subscriptions"] == (
        "${[for name in var.model_names : "
        "\"${local.naming.jobs_topic_prefix}${name}${local.naming.jobs_push_subscription_suffix}\"]}")
    assert "concat(local.push_subscriptions, local.jobs_subscriptions)" in settings["dead_letter_filter"]
    # The alert policies' filters, and the dashboard's (built in the locals).
    filters = [text for _, text in string_leaves([monitoring.get("resource", []), settings])
               if "metric.type=" in text]
    dead_letters = [f for f in filters if "dead_letter_message_count" in f]
    unacked = [f for f in filters if "oldest_unacked_message_age" in f]
    assert dead_letters and all("${local.dead_letter_filter}" in f for f in dead_letters)
    assert unacked and all("${local.subscription_filter}" in f for f in unacked)
