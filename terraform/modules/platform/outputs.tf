output "repository_url" {
  description = "Docker repository URL, e.g. us-central1-docker.pkg.dev/PROJECT/inference."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "enabled_services" {
  description = "APIs enabled by this module."
  value       = sort([for s in google_project_service.enabled : s.service])
}

output "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent (service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com), created before anything grants it a role."
  value       = google_project_service_identity.pubsub.email
}
