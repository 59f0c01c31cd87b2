locals {
  environment = merge(
    {
      GOOGLE_CLOUD_PROJECT   = var.project_id
      UPLOADS_BUCKET         = var.uploads_bucket
      MODELS                 = join(",", var.model_names)
      ALLOWED_ORIGINS        = join(",", var.allowed_origins)
      MAX_IMAGE_BYTES        = tostring(var.max_image_bytes)
      MAX_IMAGES_PER_REQUEST = tostring(var.max_images_per_request)
      PREDICTION_TTL_DAYS    = tostring(var.prediction_ttl_days)
      # Bulk jobs: images per shard and per job.
      JOB_SHARD_SIZE = tostring(var.job_shard_size)
      MAX_JOB_IMAGES = tostring(var.max_job_images)
      # functions-framework's gunicorn threads; each ?wait= long poll holds one.
      THREADS = tostring(var.concurrency)
      # Reconciler settings (read by all three entry points, used by reconcile).
      REDELIVER_AFTER_SECONDS    = tostring(var.redeliver_after_seconds)
      MAX_PREDICTION_AGE_SECONDS = tostring(var.max_prediction_age_seconds)
      MAX_DELIVERY_ATTEMPTS      = tostring(var.max_delivery_attempts)
      CALLBACK_RETRY_SECONDS     = tostring(var.callback_retry_seconds)
      # API keys, hashed in Firestore's api_keys collection. CALLBACK_ALLOW_LOOPBACK
      # is never set here: loopback callbacks exist only on a developer's machine.
      AUTH_REQUIRED         = tostring(var.auth_required)
      API_KEY_CACHE_SECONDS = tostring(var.api_key_cache_seconds)
      # gs:// images are read as this account; a denied read tells the user to grant it
      # roles/storage.objectViewer on their bucket.
      SERVICE_ACCOUNT_EMAIL = google_service_account.api.email
    },
    var.public_base_url == null ? {} : { PUBLIC_BASE_URL = var.public_base_url },
  )
}

# Runtime identity of the three entry points: write uploads, publish to the
# model topics (granted per topic in modules/model_routing), read/write Firestore.
resource "google_service_account" "api" {
  project      = var.project_id
  account_id   = "prediction-api"
  display_name = "Prediction API functions"
  description  = "Runs ${var.api_function_name}, ${var.dead_letter_function_name} and ${var.reconcile_function_name}."
}

# Create only: no read, no delete. An image whose prediction could not be recorded
# is not deleted by the API; the uploads bucket's lifecycle rule removes it.
resource "google_storage_bucket_iam_member" "write_uploads" {
  bucket = var.uploads_bucket
  role   = "roles/storage.objectCreator"
  member = google_service_account.api.member
}

# Bulk jobs whose input or output is the jobs bucket: the API lists the input
# prefix or reads the manifest, and checks that the output is writable by
# writing and deleting a probe object, before it accepts a job. objectUser is
# the predefined role with list, read, create and delete, and nothing on the
# bucket itself.
resource "google_storage_bucket_iam_member" "jobs" {
  bucket = var.jobs_bucket
  role   = "roles/storage.objectUser"
  member = google_service_account.api.member
}

resource "google_project_iam_member" "firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.api.member
}

# Builds run as this account rather than the Compute Engine default one.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "prediction-api-build"
  display_name = "Prediction API function builds"
  description  = "Cloud Build identity that turns functions/ into the function containers."
}

# What a function build needs, as Google's page on the build service account of
# Cloud Run functions lists it: Logs Writer, Artifact Registry Writer, and
# Storage Object Admin (to read the staged source and store build images).
resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/artifactregistry.writer",
    "roles/logging.logWriter",
    "roles/storage.objectAdmin",
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# Identity of the dead-letter push subscriptions: may invoke the dead_letter
# function only.
resource "google_service_account" "dead_letter_invoker" {
  project      = var.project_id
  account_id   = "dead-letter-push"
  display_name = "Pub/Sub push to the dead-letter handler"
  description  = "OIDC identity of the predictions-*-dead-letter-push subscriptions."
}

resource "google_service_account_iam_member" "dead_letter_token_creator" {
  service_account_id = google_service_account.dead_letter_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent}"
}

# The object name carries the archive's hash, so a code change redeploys.
resource "google_storage_bucket_object" "source" {
  bucket       = var.source_bucket
  name         = "functions-${filemd5(var.source_archive)}.zip"
  source       = var.source_archive
  content_type = "application/zip"
}

resource "google_cloudfunctions2_function" "api" {
  #checkov:skip=CKV_GCP_124:The API is the product's public endpoint and must accept requests from browsers anywhere.
  project     = var.project_id
  location    = var.region
  name        = var.api_function_name
  description = "Public HTTP API: accepts images, queues predictions, reports their status."

  build_config {
    runtime         = var.runtime
    entry_point     = "api"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    available_memory                 = var.memory
    available_cpu                    = "1"
    max_instance_request_concurrency = var.concurrency
    timeout_seconds                  = 60
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.api.email
    environment_variables            = local.environment
  }

  depends_on = [time_sleep.grants_propagate]
}

resource "google_cloudfunctions2_function" "dead_letter" {
  project     = var.project_id
  location    = var.region
  name        = var.dead_letter_function_name
  description = "Push target of the dead-letter subscriptions: marks predictions failed."

  build_config {
    runtime         = var.runtime
    entry_point     = "dead_letter"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    min_instance_count               = 0
    max_instance_count               = 5
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = 16
    timeout_seconds                  = 60
    # Reached by authenticated Pub/Sub pushes only, which count as internal
    # traffic when the subscription is in the same project.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.api.email
    environment_variables          = local.environment
  }

  depends_on = [time_sleep.grants_propagate]
}

# A 2nd-gen function is a Cloud Run service of the same name; invoking it
# takes run.invoker on that service.
resource "google_cloud_run_v2_service_iam_member" "api_public" {
  count = var.api_public ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.api.name
  role     = "roles/run.invoker"
  member   = "allUsers" # the product's public endpoint; see README.md (api_public)
}

resource "google_cloud_run_v2_service_iam_member" "dead_letter_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.dead_letter.name
  role     = "roles/run.invoker"
  member   = google_service_account.dead_letter_invoker.member
}

# IAM changes take effect within minutes, not at once: the function builds run
# as the build account, and the functions as the runtime account, right after
# these grants. Waits only when a grant is created or changed.
resource "time_sleep" "grants_propagate" {
  create_duration = "${var.iam_propagation_seconds}s"

  triggers = merge(
    { for role, grant in google_project_iam_member.build : role => grant.id },
    {
      write_uploads = google_storage_bucket_iam_member.write_uploads.id
      firestore     = google_project_iam_member.firestore.id
    },
  )
}
