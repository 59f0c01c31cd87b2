# Observability of the pipeline, one story with the local stack's /metrics:
# the same figures, from the structured lines the services log.
#
#   model service "batch" line          -> inference/batch_size, inference/model_latency
#   model service "prediction finished" -> inference/predictions, inference/queue_time, inference/end_to_end_latency
#   reconcile function "queue age"      -> inference/oldest_queued_age
#   dead-letter function "dead-lettered prediction" -> inference/dead_letters
#
# Pub/Sub's own subscription metrics (dead_letter_message_count,
# oldest_unacked_message_age) are charted and alerted on beside them.

locals {
  # Cloud Run revisions (the model services and the gen2 functions) log JSON lines on stdout.
  run_logs = "resource.type=\"cloud_run_revision\""

  push_subscriptions  = [for name in var.model_names : "predictions-${name}-push"]
  subscription_filter = join(" OR ", [for name in local.push_subscriptions : "resource.label.subscription_id=\"${name}\""])
  # Bulk jobs' push subscriptions (contract naming.json): their dead letters are
  # charted and alerted on too, but not their unacked age, since a big job's
  # backlog is old by design.
  naming             = jsondecode(file("${path.module}/../../../contract/inference_contract/naming.json"))
  jobs_subscriptions = [for name in var.model_names : "${local.naming.jobs_topic_prefix}${name}${local.naming.jobs_push_subscription_suffix}"]
  dead_letter_filter = join(" OR ", [for name in concat(local.push_subscriptions, local.jobs_subscriptions) : "resource.label.subscription_id=\"${name}\""])

  latency_buckets_ms = {
    num_finite_buckets = 24
    growth_factor      = 1.6
    scale              = 1
  }

  user_metric = "logging.googleapis.com/user"

  # The dashboard's charts: one tile each, two per row.
  dashboard_tiles = [
    {
      title = "Throughput: predictions finished per second"
      unit  = "1/s"
      series = [{
        legend   = "$${metric.labels.model} $${metric.labels.status}"
        filter   = "metric.type=\"${local.user_metric}/${google_logging_metric.predictions.name}\""
        aligner  = "ALIGN_RATE"
        reducer  = "REDUCE_SUM"
        group_by = ["metric.label.model", "metric.label.status"]
      }]
    },
    {
      title = "End-to-end latency, p50 and p95 (ms)"
      unit  = "ms"
      series = [for p in ["50", "95"] : {
        legend   = "p${p} $${metric.labels.model}"
        filter   = "metric.type=\"${local.user_metric}/${google_logging_metric.end_to_end_latency.name}\""
        aligner  = "ALIGN_DELTA"
        reducer  = "REDUCE_PERCENTILE_${p}"
        group_by = ["metric.label.model"]
      }]
    },
    {
      title = "Time in the queue and in the model, p95 (ms)"
      unit  = "ms"
      series = [for legend, name in { queue = google_logging_metric.queue_time.name, model = google_logging_metric.model_latency.name } : {
        legend   = "${legend} $${metric.labels.model}"
        filter   = "metric.type=\"${local.user_metric}/${name}\""
        aligner  = "ALIGN_DELTA"
        reducer  = "REDUCE_PERCENTILE_95"
        group_by = ["metric.label.model"]
      }]
    },
    {
      title = "Batch size, mean"
      unit  = "images"
      series = [{
        legend   = "$${metric.labels.model}"
        filter   = "metric.type=\"${local.user_metric}/${google_logging_metric.batch_size.name}\""
        aligner  = "ALIGN_DELTA"
        reducer  = "REDUCE_MEAN"
        group_by = ["metric.label.model"]
      }]
    },
    {
      title = "Dead letters per minute"
      unit  = "messages"
      series = [{
        legend   = "$${resource.labels.subscription_id}"
        filter   = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND resource.type=\"pubsub_subscription\" AND (${local.dead_letter_filter})"
        aligner  = "ALIGN_SUM"
        reducer  = "REDUCE_SUM"
        group_by = ["resource.label.subscription_id"]
      }]
    },
    {
      title = "Age of the oldest queued prediction (s)"
      unit  = "s"
      series = [
        {
          legend   = "in Firestore (reconciler)"
          filter   = "metric.type=\"${local.user_metric}/${google_logging_metric.oldest_queued_age.name}\""
          aligner  = "ALIGN_DELTA"
          reducer  = "REDUCE_PERCENTILE_99"
          group_by = []
        },
        {
          legend   = "Pub/Sub oldest unacked $${resource.labels.subscription_id}"
          filter   = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.type=\"pubsub_subscription\" AND (${local.subscription_filter})"
          aligner  = "ALIGN_MAX"
          reducer  = "REDUCE_MAX"
          group_by = ["resource.label.subscription_id"]
        },
      ]
    },
  ]
}

resource "google_logging_metric" "batch_size" {
  project     = var.project_id
  name        = "inference/batch_size"
  description = "Images per model call, from the model service's one log line per batch."
  filter      = "${local.run_logs} AND jsonPayload.message=\"batch\" AND jsonPayload.batch_size>0"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "1"
    display_name = "Batch size"
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "Model served"
    }
  }
  value_extractor  = "EXTRACT(jsonPayload.batch_size)"
  label_extractors = { model = "EXTRACT(jsonPayload.model)" }

  bucket_options {
    explicit_buckets {
      bounds = [1, 2, 4, 8, 16, 32, 64]
    }
  }
}

resource "google_logging_metric" "model_latency" {
  project     = var.project_id
  name        = "inference/model_latency"
  description = "Milliseconds one model call (one batch) took."
  filter      = "${local.run_logs} AND jsonPayload.message=\"batch\" AND jsonPayload.model_ms>0"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "Model latency per batch"
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "Model served"
    }
  }
  value_extractor  = "EXTRACT(jsonPayload.model_ms)"
  label_extractors = { model = "EXTRACT(jsonPayload.model)" }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = local.latency_buckets_ms.num_finite_buckets
      growth_factor      = local.latency_buckets_ms.growth_factor
      scale              = local.latency_buckets_ms.scale
    }
  }
}

resource "google_logging_metric" "predictions" {
  project     = var.project_id
  name        = "inference/predictions"
  description = "Predictions finished by the model services, by model and final status (throughput)."
  filter      = "${local.run_logs} AND jsonPayload.message=\"prediction finished\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Predictions finished"
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "Model served"
    }
    labels {
      key         = "status"
      value_type  = "STRING"
      description = "succeeded or failed"
    }
  }
  label_extractors = {
    model  = "EXTRACT(jsonPayload.model)"
    status = "EXTRACT(jsonPayload.status)"
  }
}

resource "google_logging_metric" "queue_time" {
  project     = var.project_id
  name        = "inference/queue_time"
  description = "Milliseconds from acceptance by the API to a model service's claim (timings.queue_ms of each result)."
  filter      = "${local.run_logs} AND jsonPayload.message=\"prediction finished\" AND jsonPayload.queue_ms>=0"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "Time in the queue"
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "Model served"
    }
  }
  value_extractor  = "EXTRACT(jsonPayload.queue_ms)"
  label_extractors = { model = "EXTRACT(jsonPayload.model)" }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = local.latency_buckets_ms.num_finite_buckets
      growth_factor      = local.latency_buckets_ms.growth_factor
      scale              = local.latency_buckets_ms.scale
    }
  }
}

resource "google_logging_metric" "end_to_end_latency" {
  project     = var.project_id
  name        = "inference/end_to_end_latency"
  description = "Milliseconds from acceptance by the API to the final status (timings.total_ms of each result)."
  filter      = "${local.run_logs} AND jsonPayload.message=\"prediction finished\" AND jsonPayload.total_ms>=0"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "End-to-end latency"
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "Model served"
    }
  }
  value_extractor  = "EXTRACT(jsonPayload.total_ms)"
  label_extractors = { model = "EXTRACT(jsonPayload.model)" }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = local.latency_buckets_ms.num_finite_buckets
      growth_factor      = local.latency_buckets_ms.growth_factor
      scale              = local.latency_buckets_ms.scale
    }
  }
}

resource "google_logging_metric" "oldest_queued_age" {
  project     = var.project_id
  name        = "inference/oldest_queued_age"
  description = "Seconds since the oldest still-queued prediction was accepted, measured in Firestore by every reconciler pass; it sees predictions the transport lost."
  filter      = "${local.run_logs} AND jsonPayload.message=\"queue age\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "Oldest queued prediction age"
  }
  value_extractor = "EXTRACT(jsonPayload.oldest_queued_age_seconds)"

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 20
      growth_factor      = 2
      scale              = 1
    }
  }
}

resource "google_logging_metric" "dead_letters" {
  project     = var.project_id
  name        = "inference/dead_letters"
  description = "Dead-lettered messages handled by the dead-letter function, by model and action (delivery_failed: failed; else left to the reconciler)."
  filter      = "${local.run_logs} AND jsonPayload.message=\"dead-lettered prediction\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Dead letters"
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "Model of the message"
    }
    labels {
      key         = "action"
      value_type  = "STRING"
      description = "What the dead-letter handler did"
    }
  }
  label_extractors = {
    model  = "EXTRACT(jsonPayload.model)"
    action = "EXTRACT(jsonPayload.action)"
  }
}

resource "google_monitoring_dashboard" "inference" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "Inference service"
    mosaicLayout = {
      columns = 12
      tiles = [
        for index, tile in local.dashboard_tiles : {
          xPos   = (index % 2) * 6
          yPos   = floor(index / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = tile.title
            xyChart = {
              dataSets = [for series in tile.series : {
                plotType       = "LINE"
                legendTemplate = series.legend
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = series.filter
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = series.aligner
                      crossSeriesReducer = series.reducer
                      groupByFields      = series.group_by
                    }
                  }
                }
              }]
              yAxis = { label = tile.unit, scale = "LINEAR" }
            }
          }
        }
      ]
    }
  })
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "Inference: messages dead-lettered"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Dead letters over ${var.alert_window_seconds} s above ${var.dead_letter_alert_threshold}"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND resource.type=\"pubsub_subscription\" AND (${local.dead_letter_filter})"
      comparison      = "COMPARISON_GT"
      threshold_value = var.dead_letter_alert_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Pushes to a model service failed ${var.dead_letter_alert_threshold + 1} times or more in ${var.alert_window_seconds} s and were dead-lettered. See the dashboard \"Inference service\" and the model services' logs; predictions tried 5 times end `failed` with `delivery_failed`, others are republished by the reconciler."
  }
}

# Cloud Monitoring answers 404 "Cannot find metric(s)" for up to 10 minutes on
# an alert policy over a log-based metric created moments before
# (terraform-provider-google#11102, open): wait once, when the metric is made.
resource "time_sleep" "oldest_queued_metric_propagates" {
  create_duration = "${var.metric_propagation_seconds}s"

  triggers = {
    metric = google_logging_metric.oldest_queued_age.id
  }
}

resource "google_monitoring_alert_policy" "oldest_queued" {
  project               = var.project_id
  display_name          = "Inference: a prediction has waited too long in the queue"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Oldest queued prediction (Firestore) older than ${var.oldest_queued_alert_seconds} s"
    condition_threshold {
      filter          = "metric.type=\"${local.user_metric}/${google_logging_metric.oldest_queued_age.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.oldest_queued_alert_seconds
      duration        = "${var.alert_window_seconds}s"
      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  conditions {
    display_name = "Oldest unacked push message older than ${var.oldest_queued_alert_seconds} s"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.type=\"pubsub_subscription\" AND (${local.subscription_filter})"
      comparison      = "COMPARISON_GT"
      threshold_value = var.oldest_queued_alert_seconds
      duration        = "${var.alert_window_seconds}s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A prediction has been queued for more than ${var.oldest_queued_alert_seconds} s. Check that the model services are up and ready (the dashboard's throughput and batch charts), and the reconciler's \"reconciled prediction\" log lines."
  }

  depends_on = [time_sleep.oldest_queued_metric_propagates]
}
