output "api_uri" {
  description = "URL of the public HTTP API function."
  value       = google_cloudfunctions2_function.api.service_config[0].uri
}

output "dead_letter_uri" {
  description = "URL of the dead_letter function (push endpoint and OIDC audience of the dead-letter subscriptions)."
  value       = google_cloudfunctions2_function.dead_letter.service_config[0].uri
}

output "service_account_email" {
  description = "Service account the three functions run as."
  value       = google_service_account.api.email
}

output "dead_letter_invoker_email" {
  description = "Service account the dead-letter push subscriptions authenticate as."
  value       = google_service_account.dead_letter_invoker.email
}

output "reconcile_uri" {
  description = "URL of the reconcile function (Cloud Scheduler's target and OIDC audience)."
  value       = google_cloudfunctions2_function.reconcile.service_config[0].uri
}

output "reconcile_scheduler_email" {
  description = "Service account Cloud Scheduler presents to the reconcile function; the only invoker it has."
  value       = google_service_account.reconcile_scheduler.email
}
