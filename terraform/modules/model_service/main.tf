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
    # hash of local.template (see locals.tf), which every setting below comes from.
    revision                         = local.template_revision
    service_account                  = google_service_account.model.email
    max_instance_request_concurrency = local.template.max_instance_request_concurrency
    timeout                          = local.template.timeout
    execution_environment            = local.template.execution_environment

    scaling {
      min_instance_count = local.template.min_instance_count
      max_instance_count = local.template.max_instance_count
    }

    dynamic "node_selector" {
      for_each = local.template.accelerator == null ? [] : [local.template.accelerator]
      content {
        accelerator = node_selector.value
      }
    }
    gpu_zonal_redundancy_disabled = local.template.gpu_zonal_redundancy_disabled

    containers {
      image = local.newest.image

      ports {
        name           = local.template.port_name
        container_port = local.template.container_port
      }

      resources {
        limits            = local.template.limits
        startup_cpu_boost = local.template.startup_cpu_boost
        cpu_idle          = local.template.cpu_idle
      }

      dynamic "env" {
        for_each = local.env
        content {
          name  = env.key
          value = env.value
        }
      }

      # Callbacks are signed with this (Standard Webhooks); read from Secret Manager
      # when an instance starts, never stored in the template or Terraform state.
      env {
        name = local.template.secret_env_name
        value_source {
          secret_key_ref {
            secret  = local.template.secret
            version = local.template.secret_version
          }
        }
      }

      # The service exits non-zero, with one ERROR line naming the missing
      # model, when its model version is not in the repository; cloudbuild.yaml
      # and scripts/rollout.py check the repository before any apply.
      startup_probe {
        initial_delay_seconds = local.template.startup_probe.initial_delay_seconds
        period_seconds        = local.template.startup_probe.period_seconds
        timeout_seconds       = local.template.startup_probe.timeout_seconds
        failure_threshold     = local.template.startup_probe.failure_threshold
        http_get {
          path = local.template.startup_probe.path
          port = local.template.container_port
        }
      }

      liveness_probe {
        period_seconds    = local.template.liveness_probe.period_seconds
        timeout_seconds   = local.template.liveness_probe.timeout_seconds
        failure_threshold = local.template.liveness_probe.failure_threshold
        http_get {
          path = local.template.liveness_probe.path
          port = local.template.container_port
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

  # Cloud Run checks the secret and the account's access when it creates a
  # revision: wait until the grants have propagated.
  depends_on = [time_sleep.grants_propagate]
}

# The signing secret is readable by the model services' own accounts only.
resource "google_secret_manager_secret_iam_member" "callback_signing" {
  project   = var.project_id
  secret_id = var.callback_signing_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.model.member
}

# IAM changes take effect within minutes, not at once, and Cloud Run checks
# secret access when it creates a revision; a failed first create would leave
# a tainted service. Waits only when a grant is created or changed.
resource "time_sleep" "grants_propagate" {
  create_duration = "${var.iam_propagation_seconds}s"

  triggers = {
    read_uploads     = google_storage_bucket_iam_member.read_uploads.id
    read_models      = google_storage_bucket_iam_member.read_models.id
    firestore        = google_project_iam_member.firestore.id
    callback_signing = google_secret_manager_secret_iam_member.callback_signing.id
  }
}
