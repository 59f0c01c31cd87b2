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
