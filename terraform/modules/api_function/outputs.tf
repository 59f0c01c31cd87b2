output "api_uri" {
  description = "URL of the public HTTP API function."
  value       = google_cloudfunctions2_function.api.service_config[0].uri
}

output "dead_letter_uri" {
  description = "URL of the dead_letter function (push endpoint and OIDC audience of the dead-letter subscriptions)."
  value       = google_cloudfunctions2_function.dead_letter.service_config[0].uri
}

output "service_account_email" {
  description = "Service account both functions run as."
  value       = google_service_account.api.email
}

output "dead_letter_invoker_email" {
  description = "Service account the dead-letter push subscriptions authenticate as."
  value       = google_service_account.dead_letter_invoker.email
}
