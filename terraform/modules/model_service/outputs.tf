output "service_name" {
  description = "Name of the Cloud Run service."
  value       = google_cloud_run_v2_service.model.name
}

output "service_uri" {
  description = "Main URL of the service (the push endpoint and OIDC audience)."
  value       = google_cloud_run_v2_service.model.uri
}

output "canary_url" {
  description = "Tag URL of the newest revision when the model has a canary_tag, else null."
  value = var.model.canary_tag == null ? null : one([
    for status in google_cloud_run_v2_service.model.traffic_statuses : status.uri if status.tag == var.model.canary_tag
  ])
}

output "template_revision" {
  description = "Name of the revision the template deploys (the newest revisions entry)."
  value       = google_cloud_run_v2_service.model.template[0].revision
}

output "service_account_email" {
  description = "Service account the service runs as."
  value       = google_service_account.model.email
}
