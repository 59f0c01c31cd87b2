resource "google_project_service" "enabled" {
  for_each = var.services

  project = var.project_id
  service = each.value

  # Other workloads in the project may rely on these APIs: never disable them
  # on destroy.
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Images hold no secrets; Google-managed encryption is enough and CMEK would add a KMS key to operate.
  project       = var.project_id
  location      = var.region
  repository_id = var.repository_id
  format        = "DOCKER"
  description   = "Model-service container images."

  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"

    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.untagged_image_retention_days * 86400}s"
    }
  }

  depends_on = [google_project_service.enabled]
}

# The Pub/Sub service agent signs the push subscriptions' OIDC tokens and moves
# messages to the dead-letter topics. Google creates it lazily, so on a new
# project it may not exist yet when the IAM grants naming it are applied;
# creating it here first removes that race. (google-beta only.)
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.enabled]
}
