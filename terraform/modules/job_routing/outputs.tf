output "topic_name" {
  description = "Name of the model's jobs topic (jobs-<model>), one message per shard."
  value       = google_pubsub_topic.jobs.name
}

output "push_subscription_name" {
  description = "Name of the push subscription that feeds shards to the model service's jobs path."
  value       = google_pubsub_subscription.push.name
}

output "dead_letter_topic_name" {
  description = "Name of the model's jobs dead-letter topic."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription_name" {
  description = "Name of the pull subscription that keeps dead-lettered shard messages for inspection."
  value       = google_pubsub_subscription.dead_letter.name
}
