# The reconciler: one pass finds predictions whose reconcile_at has passed
# (stuck queued, an expired running lease, an undelivered callback) and
# republishes, fails or retries them. Cloud Scheduler calls it every minute.

resource "google_cloudfunctions2_function" "reconcile" {
  #checkov:skip=CKV_GCP_124:Cloud Scheduler must reach it and is not documented as internal traffic; IAM admits only the scheduler account.
  project     = var.project_id
  location    = var.region
  name        = var.reconcile_function_name
  description = "Reconciler: POST / runs one pass over predictions whose reconcile_at has passed."

  build_config {
    runtime         = var.runtime
    entry_point     = "reconcile"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    min_instance_count = 0
    # Passes must not overlap: one instance, one request at a time.
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    timeout_seconds                  = var.reconcile_attempt_deadline_seconds
    # Google's documentation read here does not say that Cloud Scheduler's
    # calls count as internal traffic, so ingress stays open and IAM is the
    # gate: only the scheduler account below holds run.invoker.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.api.email
    environment_variables          = local.environment
  }

  depends_on = [time_sleep.grants_propagate]
}

# Identity of the Cloud Scheduler job: may invoke the reconcile function only.
resource "google_service_account" "reconcile_scheduler" {
  project      = var.project_id
  account_id   = "reconcile-scheduler"
  display_name = "Cloud Scheduler call to the reconciler"
  description  = "OIDC identity of the reconcile Cloud Scheduler job; may invoke ${var.reconcile_function_name} only."
}

resource "google_cloud_run_v2_service_iam_member" "reconcile_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.reconcile.name
  role     = "roles/run.invoker"
  member   = google_service_account.reconcile_scheduler.member
}

resource "google_cloud_scheduler_job" "reconcile" {
  project          = var.project_id
  region           = var.region
  name             = "reconcile-predictions"
  description      = "Runs one reconciler pass (${var.reconcile_function_name})."
  schedule         = var.reconcile_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "${var.reconcile_attempt_deadline_seconds}s"

  # A missed pass is covered by the next tick; retry briefly, never into it.
  retry_config {
    retry_count          = 1
    max_retry_duration   = "0s"
    min_backoff_duration = "5s"
    max_backoff_duration = "10s"
    max_doublings        = 1
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloudfunctions2_function.reconcile.service_config[0].uri}/"
    body        = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.reconcile_scheduler.email
      audience              = google_cloudfunctions2_function.reconcile.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.reconcile_invoker]
}
