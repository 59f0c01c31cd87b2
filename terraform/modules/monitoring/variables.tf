variable "project_id" {
  description = "Project whose logs, metrics, dashboard and alert policies these are."
  type        = string
}

variable "model_names" {
  description = "Served models; each has a push subscription predictions-<model>-push whose dead letters and oldest unacked message are charted."
  type        = list(string)

  validation {
    condition     = length(var.model_names) > 0 && alltrue([for name in var.model_names : can(regex("^[a-z][a-z0-9-]{0,40}$", name))])
    error_message = "model_names must be a non-empty list of lowercase model names (letters, digits, hyphens)."
  }
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel IDs (projects/<p>/notificationChannels/<id>) the alert policies notify; empty: the incidents show in the console only."
  type        = list(string)
  default     = []
}

variable "dead_letter_alert_threshold" {
  description = "Dead-lettered messages, summed over all models in alert_window_seconds, above which the dead-letter alert opens."
  type        = number
  default     = 0

  validation {
    condition     = var.dead_letter_alert_threshold >= 0
    error_message = "dead_letter_alert_threshold must be >= 0."
  }
}

variable "oldest_queued_alert_seconds" {
  description = "Age in seconds of the oldest queued prediction (as the reconciler measures it in Firestore, and Pub/Sub's oldest unacked message) above which the queue-age alert opens."
  type        = number
  default     = 300

  validation {
    condition     = var.oldest_queued_alert_seconds >= 60
    error_message = "oldest_queued_alert_seconds must be at least 60: the reconciler measures once a minute."
  }
}

variable "alert_window_seconds" {
  description = "Alignment window and duration of the alert conditions, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.alert_window_seconds >= 60 && var.alert_window_seconds % 60 == 0
    error_message = "alert_window_seconds must be a whole number of minutes, at least 60."
  }
}

variable "metric_propagation_seconds" {
  description = "Wait between creating the queue-age log-based metric and the alert policy on it (a new metric is unknown to Cloud Monitoring for up to 10 minutes)."
  type        = number

  validation {
    condition     = var.metric_propagation_seconds >= 0
    error_message = "metric_propagation_seconds must be >= 0."
  }
}
