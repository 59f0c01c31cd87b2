resource "google_service_account" "model" {
  project      = var.project_id
  account_id   = local.service_name
  display_name = "Model service ${var.model_name}"
  description  = "Runs Cloud Run service ${local.service_name}: reads uploads and models, writes predictions to Firestore."
}

resource "google_storage_bucket_iam_member" "read_uploads" {
  bucket = var.uploads_bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.model.member
}

resource "google_storage_bucket_iam_member" "read_models" {
  bucket = var.models_bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.model.member
}

# Firestore grants are project-wide only; datastore.user is its narrowest
# read/write role.
resource "google_project_iam_member" "firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.model.member
}

resource "google_cloud_run_v2_service" "model" {
  project             = var.project_id
  name                = local.service_name
  location            = var.region
  description         = "Serves model ${var.model_name}; fed by Pub/Sub push subscription predictions-${var.model_name}-push."
  ingress             = var.ingress
  deletion_protection = var.deletion_protection

  template {
    # Named, so traffic entries can refer to revisions; the name ends in a
    # hash of the template (see locals.tf).
    revision                         = local.template_revision
    service_account                  = google_service_account.model.email
    max_instance_request_concurrency = var.model.concurrency
    # A push is redelivered after the ack deadline anyway; working longer is waste.
    timeout               = "${var.model.ack_deadline_seconds}s"
    execution_environment = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = var.model.min_instances
      max_instance_count = var.model.max_instances
    }

    dynamic "node_selector" {
      for_each = local.accelerator == null ? [] : [local.accelerator]
      content {
        accelerator = node_selector.value
      }
    }
    gpu_zonal_redundancy_disabled = local.gpu_zonal_redundancy_disabled

    containers {
      image = local.newest.image

      ports {
        name           = "http1"
        container_port = var.container_port
      }

      resources {
        limits            = local.limits
        startup_cpu_boost = true
        # GPU instances must keep their CPU allocated outside requests.
        cpu_idle = !local.is_gpu
      }

      dynamic "env" {
        for_each = local.env
        content {
          name  = env.key
          value = env.value
        }
      }

      # Callbacks are signed with this (Standard Webhooks); read from Secret Manager
      # when a revision starts, never stored in the template or Terraform state.
      env {
        name = "CALLBACK_SIGNING_SECRET"
        value_source {
          secret_key_ref {
            secret  = var.callback_signing_secret
            version = "latest"
          }
        }
      }

      # The service exits non-zero, with one ERROR line naming the missing
      # model, when its model version is not in the repository; cloudbuild.yaml
      # and scripts/rollout.py check the repository before any apply.
      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 10
        timeout_seconds       = 5
        failure_threshold     = ceil(var.startup_timeout_seconds / 10)
        http_get {
          path = var.health_path
          port = var.container_port
        }
      }

      liveness_probe {
        period_seconds    = 30
        timeout_seconds   = 5
        failure_threshold = 3
        http_get {
          path = var.health_path
          port = var.container_port
        }
      }
    }
  }

  dynamic "traffic" {
    for_each = local.traffic
    content {
      type     = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
      revision = traffic.value.revision
      percent  = traffic.value.percent
      tag      = traffic.value.tag
    }
  }

  lifecycle {
    precondition {
      condition     = !contains([for rev in values(var.model.revisions) : rev.image], "BUILD_IMAGE")
      error_message = "Model ${var.model_name} still has a BUILD_IMAGE placeholder: pin it with `scripts/rollout.py pin --image IMAGE` (cloudbuild.yaml does)."
    }
  }

  depends_on = [
    google_storage_bucket_iam_member.read_uploads,
    google_storage_bucket_iam_member.read_models,
    google_project_iam_member.firestore,
    google_secret_manager_secret_iam_member.callback_signing,
  ]
}

# The signing secret is readable by the model services' own accounts only.
resource "google_secret_manager_secret_iam_member" "callback_signing" {
  project   = var.project_id
  secret_id = var.callback_signing_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.model.member
}
