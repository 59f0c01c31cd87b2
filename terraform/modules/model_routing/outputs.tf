output "topic_name" {
  description = "Name of the model's topic (predictions-<model>)."
  value       = google_pubsub_topic.model.name
}

output "dead_letter_topic_name" {
  description = "Name of the model's dead-letter topic."
  value       = google_pubsub_topic.dead_letter.name
}

output "push_subscription_name" {
  description = "Name of the push subscription that feeds the model service."
  value       = google_pubsub_subscription.push.name
}

output "dead_letter_subscription_name" {
  description = "Name of the push subscription that feeds the dead_letter function."
  value       = google_pubsub_subscription.dead_letter_push.name
}

output "push_service_account_email" {
  description = "Service account whose OIDC token authenticates pushes to the model service."
  value       = google_service_account.push.email
}
