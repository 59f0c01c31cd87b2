# Bulk jobs have their own lane per model: a topic and push subscription apart
# from the interactive predictions-<model> ones, to the model service's jobs
# path. One message is one shard of images, so its ack deadline is far longer
# than an interactive push's.

resource "google_pubsub_topic" "jobs" {
  #checkov:skip=CKV_GCP_83:Messages carry job and shard IDs only; Google-managed encryption is enough.
  project = var.project_id
  name    = local.topic_name
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Messages carry job and shard IDs only; Google-managed encryption is enough.
  project = var.project_id
  name    = local.dead_letter_topic_name
}

resource "google_pubsub_topic_iam_member" "api_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.jobs.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.publisher_service_account}"
}

resource "google_pubsub_subscription" "push" {
  project = var.project_id
  name    = local.push_subscription_name
  topic   = google_pubsub_topic.jobs.id

  # The model service holds a shard's push while it works on it (its lease is
  # renewed meanwhile); an answer after this deadline counts as a failure and the
  # shard is delivered again, so it must cover a whole shard.
  ack_deadline_seconds = var.ack_deadline_seconds

  push_config {
    push_endpoint = "${var.service_uri}${var.jobs_path}"

    # The model's push identity, which may invoke this model's service only.
    oidc_token {
      service_account_email = var.push_service_account
      audience              = var.service_uri
    }
  }

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = var.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # The default policy deletes a subscription after 31 idle days; a model whose
  # jobs are rare must keep receiving them.
  expiration_policy {
    ttl = ""
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_publisher]
}

# What was dead-lettered is kept here for a week for inspection (gcloud pubsub
# subscriptions pull). Nothing else needs it: the reconciler publishes a shard
# again while it is unclaimed or its lease has expired, whatever became of its
# message; dead-lettering only stops Pub/Sub retrying one message forever.
resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = local.dead_letter_topic_name
  topic   = google_pubsub_topic.dead_letter.id

  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering: the Pub/Sub service agent republishes undeliverable shard
# messages to the dead-letter topic and acknowledges them on the jobs subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent}"
}

resource "google_pubsub_subscription_iam_member" "source_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}

# The model service reads the inputs that `inference jobs submit` uploaded to
# the jobs bucket, and writes each shard's results there when the output is in
# it. Create only, no overwrite or delete: a shard's results object is written
# once (if_generation_match=0), and a redelivery that finds it only reads it.
resource "google_storage_bucket_iam_member" "read_jobs" {
  bucket = var.jobs_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${var.model_service_account}"
}

resource "google_storage_bucket_iam_member" "write_job_results" {
  bucket = var.jobs_bucket
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${var.model_service_account}"
}
