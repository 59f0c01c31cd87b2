output "dashboard_id" {
  description = "ID of the Cloud Monitoring dashboard \"Inference service\"."
  value       = google_monitoring_dashboard.inference.id
}

output "log_metric_names" {
  description = "Names of the log-based metrics (metric type logging.googleapis.com/user/<name>)."
  value = [for metric in [
    google_logging_metric.batch_size, google_logging_metric.model_latency, google_logging_metric.predictions,
    google_logging_metric.queue_time, google_logging_metric.end_to_end_latency,
    google_logging_metric.oldest_queued_age, google_logging_metric.dead_letters,
  ] : metric.name]
}

output "alert_policy_ids" {
  description = "IDs of the dead-letter and queue-age alert policies."
  value       = [google_monitoring_alert_policy.dead_letters.id, google_monitoring_alert_policy.oldest_queued.id]
}
