"""Structure of the Terraform configuration, asserted on the parsed HCL."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import (
    MODULE_NAMES,
    MODULES_DIR,
    REPO_ROOT,
    TERRAFORM_DIR,
    blocks_by_name,
    dynamic_blocks,
    example_models,
    load_hcl,
    load_module,
    only,
    resources,
    string_leaves,
)

ROOT = load_module(TERRAFORM_DIR)
MODULES = {name: load_module(MODULES_DIR / name) for name in MODULE_NAMES}
PER_MODEL_MODULES = ("model_service", "model_routing", "job_routing")
# The interactive predictions' service and routing (the jobs lane has tests/terraform/test_jobs.py).
PREDICTION_MODULES = ("model_service", "model_routing")
# What model_routing/naming.tf reads (tests/terraform/test_naming.py runs it in Terraform).
NAMING = json.loads((REPO_ROOT / "contract" / "inference_contract" / "naming.json").read_text())


def _resolve(template: str, locals_: dict, model: str) -> str:
    """Substitute ${local.x}, ${local.naming.x} and ${var.model_name} in a name template."""
    previous = None
    while template != previous:  # locals refer to locals
        previous = template
        for key, value in NAMING.items():
            template = template.replace(f"${{local.naming.{key}}}", value)
        for key, value in locals_.items():
            if isinstance(value, str):
                template = template.replace(f"${{local.{key}}}", value)
    return template.replace("${var.model_name}", model)


def _expanded(resource_type: str) -> list[tuple[str, str, dict]]:
    """(model, resource name, body) for every instance a per-model module creates
    for the example models: one per models entry, as root's for_each says."""
    instances = []
    for model in sorted(example_models()):
        for module in PREDICTION_MODULES:
            for (_, name), body in resources(MODULES[module], resource_type).items():
                instances.append((model, name, body))
    return instances


# --- wiring ---------------------------------------------------------------------


def test_provider_and_terraform_versions_are_pinned():
    settings = only(load_hcl(TERRAFORM_DIR / "versions.tf")["terraform"])
    assert settings["required_version"] == ">= 1.5"
    google = only(settings["required_providers"])["google"]
    assert google["source"] == "hashicorp/google"
    assert re.fullmatch(r"~> 7\.\d+", google["version"]), google["version"]


def test_root_calls_every_module_once():
    calls = blocks_by_name(ROOT, "module")
    assert {call["source"] for call in calls.values()} == {f"./modules/{name}" for name in MODULE_NAMES}


@pytest.mark.parametrize("module", PER_MODEL_MODULES)
def test_per_model_modules_expand_over_the_models_map(module):
    call = blocks_by_name(ROOT, "module")[module]
    assert call["for_each"] == "${var.models}"
    assert call["model_name"] == "${each.key}"


def test_shared_modules_are_not_repeated():
    for name, call in blocks_by_name(ROOT, "module").items():
        if name not in PER_MODEL_MODULES:
            assert "for_each" not in call and "count" not in call, name


@pytest.mark.parametrize("module", PER_MODEL_MODULES)
def test_per_model_modules_create_single_instances(module):
    # One module instance per model, so no resource in it may multiply itself.
    for (rtype, name), body in resources(MODULES[module]).items():
        assert "for_each" not in body and "count" not in body, f"{rtype}.{name}"


# --- one topic, subscription and service per model ---------------------------------


def test_one_topic_and_dead_letter_topic_per_model():
    models = example_models()
    topics = _expanded("google_pubsub_topic")
    assert len(topics) == 2 * len(models) == 6
    routing_locals = only(MODULES["model_routing"]["locals"])
    names = sorted(_resolve(body["name"], routing_locals, model) for model, _, body in topics)
    expected = sorted([f"predictions-{m}" for m in models] + [f"predictions-{m}-dead-letter" for m in models])
    assert names == expected


def test_one_cloud_run_service_per_model():
    services = _expanded("google_cloud_run_v2_service")
    assert len(services) == len(example_models()) == 3
    service_locals = only(MODULES["model_service"]["locals"])
    names = {_resolve(body["name"], service_locals, model) for model, _, body in services}
    assert names == {f"model-{m}" for m in example_models()}


def test_one_push_subscription_per_model_with_oidc_retry_and_dead_letter():
    subscriptions = resources(MODULES["model_routing"], "google_pubsub_subscription")
    assert set(subscriptions) == {
        ("google_pubsub_subscription", "push"),
        ("google_pubsub_subscription", "dead_letter_push"),
    }
    push = subscriptions[("google_pubsub_subscription", "push")]
    routing_locals = only(MODULES["model_routing"]["locals"])
    assert _resolve(push["name"], routing_locals, "resnet50") == "predictions-resnet50-push"
    assert push["topic"] == "${google_pubsub_topic.model.id}"
    assert push["ack_deadline_seconds"] == "${var.ack_deadline_seconds}"

    push_config = only(push["push_config"])
    assert push_config["push_endpoint"] == "${var.service_uri}/"
    oidc = only(push_config["oidc_token"], "oidc_token")
    assert oidc["service_account_email"] == "${google_service_account.push.email}"
    assert oidc["audience"] == "${var.service_uri}"

    dead_letter = only(push["dead_letter_policy"], "dead_letter_policy")
    assert dead_letter["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert dead_letter["max_delivery_attempts"] == "${var.max_delivery_attempts}"

    retry = only(push["retry_policy"], "retry_policy")
    assert set(retry) == {"minimum_backoff", "maximum_backoff"}
    assert only(push["expiration_policy"])["ttl"] == "", "an idle model's subscription must never expire"

    assert len(_expanded("google_pubsub_subscription")) == 2 * len(example_models())


def test_dead_letter_subscription_pushes_to_the_dead_letter_function_with_oidc():
    sub = resources(MODULES["model_routing"])[("google_pubsub_subscription", "dead_letter_push")]
    routing_locals = only(MODULES["model_routing"]["locals"])
    assert _resolve(sub["name"], routing_locals, "cat") == "predictions-cat-dead-letter-push"
    assert sub["topic"] == "${google_pubsub_topic.dead_letter.id}"
    config = only(sub["push_config"])
    assert config["push_endpoint"] == "${var.dead_letter_uri}/"
    oidc = only(config["oidc_token"])
    assert oidc["service_account_email"] == "${var.dead_letter_push_service_account}"
    assert oidc["audience"] == "${var.dead_letter_uri}"
    assert "retry_policy" in sub


def test_ack_deadline_is_per_model_and_delivery_attempts_one_value_shared_with_the_reconciler():
    calls = blocks_by_name(ROOT, "module")
    assert calls["model_routing"]["ack_deadline_seconds"] == "${each.value.ack_deadline_seconds}"
    # MAX_DELIVERY_ATTEMPTS must equal the subscriptions' threshold: both come from one variable.
    assert calls["model_routing"]["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert calls["api_function"]["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    environment = only(MODULES["api_function"]["locals"])["environment"]
    assert "MAX_DELIVERY_ATTEMPTS = tostring(var.max_delivery_attempts)" in environment


# --- IAM ----------------------------------------------------------------------------


def test_push_service_account_invokes_only_its_own_service():
    routing = resources(MODULES["model_routing"])
    invokers = [
        body
        for (rtype, _), body in routing.items()
        if rtype.endswith("_iam_member") and body["role"] == "roles/run.invoker"
    ]
    assert invokers == [routing[("google_cloud_run_v2_service_iam_member", "push_invoker")]]
    invoker = invokers[0]
    assert invoker["name"] == "${var.service_name}"
    assert invoker["member"] == "${google_service_account.push.member}"
    # The root wires each routing instance to its own model's service.
    call = blocks_by_name(ROOT, "module")["model_routing"]
    assert call["service_name"] == "${module.model_service[each.key].service_name}"
    for module in MODULES.values():
        for (rtype, _), body in resources(module).items():
            if rtype.startswith("google_project_iam"):
                assert body["role"] != "roles/run.invoker", "run.invoker must not be granted project-wide"


def test_pubsub_service_agent_can_dead_letter():
    routing = resources(MODULES["model_routing"])
    publisher = routing[("google_pubsub_topic_iam_member", "dead_letter_publisher")]
    assert publisher["topic"] == "${google_pubsub_topic.dead_letter.name}"
    assert publisher["role"] == "roles/pubsub.publisher"
    assert publisher["member"] == "serviceAccount:${var.pubsub_service_agent}"
    subscriber = routing[("google_pubsub_subscription_iam_member", "source_subscriber")]
    assert subscriber["subscription"] == "${google_pubsub_subscription.push.name}"
    assert subscriber["role"] == "roles/pubsub.subscriber"
    assert subscriber["member"] == "serviceAccount:${var.pubsub_service_agent}"
    agent = only(ROOT["locals"])["pubsub_service_agent"]
    assert agent == "${module.platform.pubsub_service_agent}"


def test_pubsub_service_identity_exists_before_anything_grants_it_a_role():
    platform = MODULES["platform"]
    identity = resources(platform)[("google_project_service_identity", "pubsub")]
    assert identity["service"] == "pubsub.googleapis.com"
    assert identity["provider"] == "google-beta"
    output = blocks_by_name(platform, "output")["pubsub_service_agent"]
    assert output["value"] == "${google_project_service_identity.pubsub.email}"
    # Every module that grants the agent a role gets it from this output.
    calls = blocks_by_name(ROOT, "module")
    assert calls["model_routing"]["pubsub_service_agent"] == "${local.pubsub_service_agent}"
    assert calls["api_function"]["pubsub_service_agent"] == "${local.pubsub_service_agent}"
    beta = only(
        only(load_hcl(TERRAFORM_DIR / "versions.tf")["terraform"])["required_providers"]
    )["google-beta"]
    assert beta["source"] == "hashicorp/google-beta" and re.fullmatch(r"~> 7\.\d+", beta["version"])
    assert "google-beta" in only(
        only(load_hcl(MODULES_DIR / "platform" / "versions.tf")["terraform"])["required_providers"]
    )


def test_model_service_account_is_least_privilege():
    service = resources(MODULES["model_service"])
    grants = {(rtype, body["role"]) for (rtype, _), body in service.items() if rtype.endswith("_iam_member")}
    assert grants == {
        ("google_storage_bucket_iam_member", "roles/storage.objectViewer"),
        ("google_project_iam_member", "roles/datastore.user"),
        ("google_secret_manager_secret_iam_member", "roles/secretmanager.secretAccessor"),
    }
    buckets = {
        body["bucket"] for (rtype, _), body in service.items() if rtype == "google_storage_bucket_iam_member"
    }
    assert buckets == {"${var.uploads_bucket}", "${var.models_bucket}"}
    run = service[("google_cloud_run_v2_service", "model")]
    assert only(run["template"])["service_account"] == "${google_service_account.model.email}"


def test_api_function_service_account_grants():
    function = resources(MODULES["api_function"])
    assert (
        function[("google_storage_bucket_iam_member", "write_uploads")]["role"]
        == "roles/storage.objectCreator"
    )
    assert function[("google_project_iam_member", "firestore")]["role"] == "roles/datastore.user"
    # The build account's roles as Google's page on the functions' build service account lists them.
    build_roles = function[("google_project_iam_member", "build")]["for_each"]
    for role in ("roles/storage.objectAdmin", "roles/artifactregistry.writer", "roles/logging.logWriter"):
        assert role in build_roles, role
    # Builds and functions start only once the grants have had time to propagate.
    wait = function[("time_sleep", "grants_propagate")]
    for grant in ("google_project_iam_member.build", "google_storage_bucket_iam_member.write_uploads",
                  "google_project_iam_member.firestore"):
        assert grant in str(wait["triggers"]), grant
    for name in ("api", "dead_letter", "reconcile"):
        assert function[("google_cloudfunctions2_function", name)]["depends_on"] == [
            "${time_sleep.grants_propagate}"], name
    publisher = resources(MODULES["model_routing"])[("google_pubsub_topic_iam_member", "api_publisher")]
    assert publisher["topic"] == "${google_pubsub_topic.model.name}"
    assert publisher["role"] == "roles/pubsub.publisher"
    assert publisher["member"] == "serviceAccount:${var.publisher_service_account}"


# --- no public access but the API (and the static site's objects) --------------------------


PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
# The only places a public principal may appear, and the role it may hold there.
ALLOWED_PUBLIC = {
    ("api_function", "google_cloud_run_v2_service_iam_member", "api_public"): "roles/run.invoker",
    ("website", "google_storage_bucket_iam_member", "public_read"): "roles/storage.objectViewer",
}


def test_public_principals_appear_only_on_the_api_and_the_website_bucket():
    found = {}
    for module_name, module in {"root": ROOT, **MODULES}.items():
        for (rtype, name), body in resources(module).items():
            for path, text in string_leaves(body):
                if any(member in text for member in PUBLIC_MEMBERS):
                    found[(module_name, rtype, name)] = (path, text, body)
        for kind in ("module", "locals", "output"):
            for path, text in string_leaves(module.get(kind, [])):
                assert not any(member in text for member in PUBLIC_MEMBERS), (
                    f"{module_name} {kind} {path}: {text}"
                )
    assert set(found) == set(ALLOWED_PUBLIC), f"public principals found at {sorted(found)}"
    for key, (path, text, body) in found.items():
        assert path == "member" and text == "allUsers", key
        assert body["role"] == ALLOWED_PUBLIC[key], key


def test_public_api_invoker_is_switchable_and_targets_the_api_function_only():
    invoker = resources(MODULES["api_function"])[("google_cloud_run_v2_service_iam_member", "api_public")]
    assert invoker["count"] == "${var.api_public ? 1 : 0}"
    assert invoker["name"] == "${google_cloudfunctions2_function.api.name}"
    assert blocks_by_name(ROOT, "variable")["api_public"]["default"] is True
    assert blocks_by_name(ROOT, "module")["api_function"]["api_public"] == "${var.api_public}"


def test_dead_letter_function_is_invoked_by_the_dead_letter_push_account_only():
    function = resources(MODULES["api_function"])
    invokers = [
        body
        for (rtype, _), body in function.items()
        if rtype == "google_cloud_run_v2_service_iam_member" and "dead_letter" in body["name"]
    ]
    assert len(invokers) == 1
    assert invokers[0]["member"] == "${google_service_account.dead_letter_invoker.member}"
    assert invokers[0]["role"] == "roles/run.invoker"


# --- Cloud Run model service --------------------------------------------------------


def _model_service() -> dict:
    return resources(MODULES["model_service"])[("google_cloud_run_v2_service", "model")]


def test_model_service_container_settings():
    template = only(_model_service()["template"])
    assert template["revision"] == "${local.template_revision}"
    scaling = only(template["scaling"])
    assert scaling == {
        "min_instance_count": "${local.template.min_instance_count}",
        "max_instance_count": "${local.template.max_instance_count}",
    }
    assert template["max_instance_request_concurrency"] == (
        "${local.template.max_instance_request_concurrency}"
    )
    container = only(template["containers"])
    resources_ = only(container["resources"])
    assert resources_["startup_cpu_boost"] == "${local.template.startup_cpu_boost}"
    assert resources_["limits"] == "${local.template.limits}"
    assert dynamic_blocks(container)["env"]["for_each"] == "${local.env}"
    for probe in ("startup_probe", "liveness_probe"):
        http_get = only(only(container[probe])["http_get"])
        assert http_get["path"] == f"${{local.template.{probe}.path}}", probe
    service_locals = only(MODULES["model_service"]["locals"])
    assert service_locals["template"]["startup_probe"]["path"] == "${var.health_path}"
    assert service_locals["template"]["startup_cpu_boost"] is True
    health = blocks_by_name(MODULES["model_service"], "variable")["health_path"]
    assert health["default"] == "/healthz"


# Names a template attribute may read besides local.template: the revision's own
# name, image and environment, the service account, and dynamic blocks' iterators.
TEMPLATE_SOURCES = ("local.template.", "local.template_revision", "local.newest.image", "local.env",
                    "google_service_account.model.", "node_selector.value", "env.key", "env.value")


def test_every_template_setting_comes_from_the_hashed_local_template():
    # The revision name hashes local.template: a literal written into the
    # template block would change the template without changing the name, and
    # Cloud Run answers 409 to a changed template under an existing name.
    template = only(_model_service()["template"])
    leaves = []

    def walk(value, path):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        else:
            leaves.append((path, value))

    walk(template, "template")
    assert len(leaves) > 20
    for path, value in leaves:
        assert isinstance(value, str) and value.startswith("${") and value.endswith("}"), (path, value)
        assert any(source in value for source in TEMPLATE_SOURCES), (path, value)
    hashed = only(MODULES["model_service"]["locals"])["revision_names"]
    assert "template = local.template" in hashed


def test_traffic_targets_revisions_by_name_and_tag():
    traffic = dynamic_blocks(_model_service())["traffic"]
    assert traffic["for_each"] == "${local.traffic}"
    content = only(traffic["content"])
    assert content["type"] == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
    assert content["revision"] == "${traffic.value.revision}"
    assert content["percent"] == "${traffic.value.percent}"
    assert content["tag"] == "${traffic.value.tag}"


GPU_MARKERS = ("nvidia", "node_selector", "gpu_zonal_redundancy_disabled")


def test_gpu_settings_exist_only_under_the_accelerator_condition():
    service_locals = only(MODULES["model_service"]["locals"])
    assert service_locals["is_gpu"] == '${var.model.accelerator == "gpu"}'
    gpu_locals = {"accelerator", "gpu_zonal_redundancy_disabled", "cpu", "memory", "limits"}
    for name in gpu_locals:
        assert (
            service_locals[name].startswith("${local.is_gpu ?") or "local.is_gpu ?" in service_locals[name]
        ), name
    assert service_locals["accelerator"] == '${local.is_gpu ? "nvidia-l4" : null}'
    # Everywhere else, GPU settings are reached only through those locals.
    template = only(_model_service()["template"])
    node_selector = dynamic_blocks(template)["node_selector"]
    assert node_selector["for_each"] == (
        "${local.template.accelerator == null ? [] : [local.template.accelerator]}"
    )
    assert template["gpu_zonal_redundancy_disabled"] == "${local.template.gpu_zonal_redundancy_disabled}"
    hashed = service_locals["template"]
    assert hashed["accelerator"] == "${local.accelerator}"
    assert hashed["gpu_zonal_redundancy_disabled"] == "${local.gpu_zonal_redundancy_disabled}"
    for module_name, module in MODULES.items():
        for (rtype, name), body in resources(module).items():
            for path, text in string_leaves(body):
                assert "nvidia" not in text, (
                    f"{module_name} {rtype}.{name} {path} sets a GPU outside the conditional locals"
                )
        for key, value in only(module.get("locals", [{}])).items():
            if key not in gpu_locals | {"template"} and isinstance(value, str):
                assert not any(marker in value for marker in GPU_MARKERS), f"{module_name} local.{key}"


def test_model_services_get_no_public_invoker():
    for (rtype, name), body in resources(MODULES["model_service"]).items():
        for _, text in string_leaves(body):
            assert "allUsers" not in text and "allAuthenticatedUsers" not in text, f"{rtype}.{name}"


# --- storage, Firestore, functions, website -----------------------------------------------


def test_uploads_bucket_has_uniform_access_lifecycle_and_cors():
    bucket = resources(MODULES["storage"])[("google_storage_bucket", "uploads")]
    assert bucket["uniform_bucket_level_access"] is True
    rule = only(bucket["lifecycle_rule"])
    assert only(rule["condition"])["age"] == "${var.uploads_retention_days}"
    assert only(rule["action"])["type"] == "Delete"
    assert only(bucket["cors"])["origin"] == "${var.cors_origins}"
    website_origin = only(ROOT["locals"])["allowed_origins"]
    assert "local.website_origin" in website_origin
    assert blocks_by_name(ROOT, "module")["storage"]["cors_origins"] == "${local.allowed_origins}"


def test_the_model_repository_bucket_goes_with_its_objects_only_without_deletion_protection():
    models = resources(MODULES["storage"])[("google_storage_bucket", "models")]
    assert models["force_destroy"] == "${!var.deletion_protection}"
    assert blocks_by_name(ROOT, "module")["storage"]["deletion_protection"] == "${var.deletion_protection}"


def test_every_bucket_uses_uniform_access():
    buckets = {
        **resources(MODULES["storage"], "google_storage_bucket"),
        **resources(MODULES["website"], "google_storage_bucket"),
    }
    assert len(buckets) == 5  # uploads, models, function sources, jobs, website
    for key, bucket in buckets.items():
        assert bucket["uniform_bucket_level_access"] is True, key


def test_firestore_native_database_with_ttl_on_expire_at():
    firestore = resources(MODULES["firestore"])
    database = firestore[("google_firestore_database", "default")]
    assert database["type"] == "FIRESTORE_NATIVE"
    field = firestore[("google_firestore_field", "prediction_ttl")]
    assert "ttl_config" in field
    variables = blocks_by_name(MODULES["firestore"], "variable")
    assert (
        field["collection"] == "${var.predictions_collection}"
        and variables["predictions_collection"]["default"] == "predictions"
    )
    assert field["field"] == "${var.ttl_field}" and variables["ttl_field"]["default"] == "expire_at"


def test_functions_share_one_source_archive_three_entry_points_and_one_environment():
    function = resources(MODULES["api_function"], "google_cloudfunctions2_function")
    entry_points = {}
    for (_, name), body in function.items():
        build = only(body["build_config"])
        storage_source = only(only(build["source"])["storage_source"])
        assert storage_source["object"] == "${google_storage_bucket_object.source.name}", name
        entry_points[name] = build["entry_point"]
        assert only(body["service_config"])["service_account_email"] == "${google_service_account.api.email}"
    assert entry_points == {"api": "api", "dead_letter": "dead_letter", "reconcile": "reconcile"}
    for (_, name), body in function.items():
        assert only(body["service_config"])["environment_variables"] == "${local.environment}", name


def test_function_environment_carries_the_contract_settings():
    environment = only(MODULES["api_function"]["locals"])["environment"]
    for key in (
        "GOOGLE_CLOUD_PROJECT",
        "UPLOADS_BUCKET",
        "MODELS",
        "ALLOWED_ORIGINS",
        "MAX_IMAGE_BYTES",
        "MAX_IMAGES_PER_REQUEST",
        "PREDICTION_TTL_DAYS",
        "PUBLIC_BASE_URL",
        "REDELIVER_AFTER_SECONDS",
        "MAX_PREDICTION_AGE_SECONDS",
        "MAX_DELIVERY_ATTEMPTS",
        "CALLBACK_RETRY_SECONDS",
    ):
        assert re.search(rf"\b{key}\s*=", environment), key
    assert 'join(",", var.model_names)' in environment
    assert blocks_by_name(ROOT, "module")["api_function"]["model_names"] == "${sort(keys(var.models))}"


def test_website_config_js_points_at_the_api():
    config = resources(MODULES["website"])[("google_storage_bucket_object", "config")]
    assert config["name"] == "config.js"
    assert config["content"].startswith("window.INFERENCE_CONFIG = ${jsonencode({apiBaseUrl = var.api_url})}")
    assert blocks_by_name(ROOT, "module")["website"]["api_url"] == "${module.api_function.api_uri}"


def test_required_outputs_exist():
    outputs = blocks_by_name(ROOT, "output")
    assert {"api_url", "website_url", "model_service_urls"} <= set(outputs)
    assert outputs["model_service_urls"]["value"].startswith("${{for name, service in module.model_service")


# --- the reconciler (issue 8) -----------------------------------------------------------


def test_scheduler_calls_the_reconcile_function_every_minute_with_oidc():
    function = resources(MODULES["api_function"])
    job = function[("google_cloud_scheduler_job", "reconcile")]
    assert job["schedule"] == "${var.reconcile_schedule}"
    assert blocks_by_name(ROOT, "variable")["reconcile_schedule"]["default"] == "* * * * *"
    assert job["attempt_deadline"] == "${var.reconcile_attempt_deadline_seconds}s"
    target = only(job["http_target"])
    assert target["http_method"] == "POST"
    assert target["uri"] == "${google_cloudfunctions2_function.reconcile.service_config[0].uri}/"
    oidc = only(target["oidc_token"])
    assert oidc["service_account_email"] == "${google_service_account.reconcile_scheduler.email}"
    assert oidc["audience"] == "${google_cloudfunctions2_function.reconcile.service_config[0].uri}"
    retry = only(job["retry_config"])
    assert retry["retry_count"] >= 1
    # A pass ends within the attempt deadline, which ends before the next tick.
    deadline = blocks_by_name(MODULES["api_function"], "variable")["reconcile_attempt_deadline_seconds"]
    assert deadline["default"] < 60
    reconcile = function[("google_cloudfunctions2_function", "reconcile")]
    assert only(reconcile["service_config"])["timeout_seconds"] == "${var.reconcile_attempt_deadline_seconds}"
    assert "cloudscheduler.googleapis.com" in (
        blocks_by_name(MODULES["platform"], "variable")["services"]["default"]
    )


def test_only_the_scheduler_account_may_invoke_the_reconcile_function():
    function = resources(MODULES["api_function"])
    invokers = [
        body for (rtype, _), body in function.items()
        if rtype == "google_cloud_run_v2_service_iam_member" and "reconcile" in body["name"]
    ]
    assert invokers == [function[("google_cloud_run_v2_service_iam_member", "reconcile_invoker")]]
    assert invokers[0]["name"] == "${google_cloudfunctions2_function.reconcile.name}"
    assert invokers[0]["role"] == "roles/run.invoker"
    assert invokers[0]["member"] == "${google_service_account.reconcile_scheduler.member}"
    # No public principal anywhere near it (the allUsers test above covers every module).
    for key in (
        ("google_cloudfunctions2_function", "reconcile"),
        ("google_cloud_scheduler_job", "reconcile"),
    ):
        for _, text in string_leaves(function[key]):
            assert "allUsers" not in text and "allAuthenticatedUsers" not in text
    # It runs as the functions' account, which publishes to every model topic and uses Firestore.
    reconcile = function[("google_cloudfunctions2_function", "reconcile")]
    assert only(reconcile["service_config"])["service_account_email"] == "${google_service_account.api.email}"


def test_reconcile_at_has_an_ascending_single_field_index_apart_from_the_ttl_field():
    firestore = resources(MODULES["firestore"])
    field = firestore[("google_firestore_field", "reconcile_at")]
    variables = blocks_by_name(MODULES["firestore"], "variable")
    assert field["collection"] == "${var.predictions_collection}"
    assert (
        field["field"] == "${var.reconcile_field}"
        and variables["reconcile_field"]["default"] == "reconcile_at"
    )
    index = only(only(field["index_config"])["indexes"])
    assert index == {"order": "ASCENDING", "query_scope": "COLLECTION"}
    assert "ttl_config" not in field
    ttl = firestore[("google_firestore_field", "prediction_ttl")]
    assert "index_config" not in ttl, "an index_config on the TTL field would replace its automatic indexes"
    assert variables["reconcile_field"]["default"] != variables["ttl_field"]["default"]
    assert any("!= var.ttl_field" in rule["condition"] for rule in variables["reconcile_field"]["validation"])


def test_model_service_refuses_to_deploy_a_placeholder_image():
    lifecycle = only(_model_service()["lifecycle"])
    condition = only(lifecycle["precondition"])["condition"]
    assert 'BUILD_IMAGE' in condition and "var.model.revisions" in condition


def test_model_service_batch_and_lease_settings_reach_the_container():
    service_locals = only(MODULES["model_service"]["locals"])
    for key, attribute in (
        ("MAX_BATCH_SIZE", "max_batch_size"),
        ("MAX_BATCH_DELAY_MS", "max_batch_delay_ms"),
        ("RUN_LEASE_SECONDS", "run_lease_seconds"),
        ("MODEL_READY_WAIT_SECONDS", "model_ready_wait_seconds"),
    ):
        assert service_locals["shared_env"][key] == f"${{tostring(var.model.{attribute})}}", key
    # Every template setting is hashed into the revision name.
    settings = str(service_locals["template"])
    for name in (
        "var.startup_timeout_seconds",
        "var.container_port",
        "var.health_path",
        "local.shared_env",
        "local.limits",
    ):
        assert name in settings, name
    assert "template = local.template" in service_locals["revision_names"]


# --- security at the edges (issue 10) ---------------------------------------------------------


def test_api_keys_are_on_by_default_and_reach_the_functions():
    root_variables = blocks_by_name(ROOT, "variable")
    assert root_variables["api_auth_required"]["default"] is True
    assert root_variables["api_auth_required"]["type"] == "bool"
    call = blocks_by_name(ROOT, "module")["api_function"]
    assert call["auth_required"] == "${var.api_auth_required}"
    environment = only(MODULES["api_function"]["locals"])["environment"]
    assert re.search(r"\bAUTH_REQUIRED\s*=\s*tostring\(var.auth_required\)", environment)
    assert re.search(r"\bAPI_KEY_CACHE_SECONDS\s*=", environment)


def test_terraform_never_allows_loopback_or_http_callbacks():
    for path in TERRAFORM_DIR.rglob("*.tf"):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("#"))
        assert "CALLBACK_ALLOW_LOOPBACK" not in code, path
        assert "CALLBACK_ALLOW_HTTP" not in code, path


def test_callbacks_are_signed_with_a_secret_manager_secret_only_the_model_account_reads():
    service = resources(MODULES["model_service"])
    container = only(only(_model_service()["template"])["containers"])
    [signing] = container["env"]
    assert signing == {"name": "${local.template.secret_env_name}", "value_source": signing["value_source"]}
    reference = only(only(signing["value_source"])["secret_key_ref"])
    assert reference == {"secret": "${local.template.secret}", "version": "${local.template.secret_version}"}
    grant = service[("google_secret_manager_secret_iam_member", "callback_signing")]
    assert grant["secret_id"] == "${var.callback_signing_secret}"
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert grant["member"] == "${google_service_account.model.member}"
    # The revision is created only once the grant has had time to propagate.
    assert _model_service()["depends_on"] == ["${time_sleep.grants_propagate}"]
    wait = service[("time_sleep", "grants_propagate")]
    assert "google_secret_manager_secret_iam_member.callback_signing.id" in str(wait["triggers"])
    # A change of secret is a change of template: it must deploy under a new revision name.
    settings = only(MODULES["model_service"]["locals"])["template"]
    assert settings["secret"] == "${var.callback_signing_secret}"
    assert (settings["secret_env_name"], settings["secret_version"]) == ("CALLBACK_SIGNING_SECRET", "latest")
    assert (
        blocks_by_name(ROOT, "module")["model_service"]["callback_signing_secret"]
        == "${var.callback_signing_secret}"
    )
    assert "secretmanager.googleapis.com" in (
        blocks_by_name(MODULES["platform"], "variable")["services"]["default"]
    )
    # No secret value is managed by Terraform (bootstrap.sh makes it), so none is in its state.
    for module in MODULES.values():
        assert not resources(module, "google_secret_manager_secret_version")


def test_idempotency_records_expire_by_ttl():
    firestore = resources(MODULES["firestore"])
    field = firestore[("google_firestore_field", "idempotency_ttl")]
    assert "ttl_config" in field and field["field"] == "${var.ttl_field}"
    variables = blocks_by_name(MODULES["firestore"], "variable")
    assert field["collection"] == "${var.idempotency_collection}"
    assert variables["idempotency_collection"]["default"] == "idempotency_keys"


def test_internal_endpoints_are_invoked_only_by_their_oidc_accounts():
    """Model services, the dead-letter and reconcile functions: one run.invoker each, a dedicated
    service account that pushes or calls with an OIDC token; nothing public."""
    function = resources(MODULES["api_function"])
    invokers = {name: body for (rtype, name), body in function.items()
                if rtype.endswith("_iam_member") and body.get("role") == "roles/run.invoker"}
    targets = {body["name"]: body["member"] for name, body in invokers.items() if name != "api_public"}
    assert targets == {
        "${google_cloudfunctions2_function.dead_letter.name}":
            "${google_service_account.dead_letter_invoker.member}",
        "${google_cloudfunctions2_function.reconcile.name}":
            "${google_service_account.reconcile_scheduler.member}",
    }
    routing = resources(MODULES["model_routing"])
    model_invokers = [body for (rtype, _), body in routing.items()
                      if rtype.endswith("_iam_member") and body.get("role") == "roles/run.invoker"]
    assert [(b["name"], b["member"]) for b in model_invokers] == [
        ("${var.service_name}", "${google_service_account.push.member}")]
    for module in ("model_service",):
        for (rtype, name), body in resources(MODULES[module]).items():
            assert not (rtype.endswith("_iam_member") and body.get("role") == "roles/run.invoker"), name
