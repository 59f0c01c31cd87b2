resource "google_pubsub_topic" "model" {
  #checkov:skip=CKV_GCP_83:Messages carry prediction IDs and object URIs only; Google-managed encryption is enough.
  project = var.project_id
  name    = local.topic_name
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Messages carry prediction IDs and object URIs only; Google-managed encryption is enough.
  project = var.project_id
  name    = local.dead_letter_topic_name
}

# Dedicated identity for pushes to this model's service: run.invoker on that
# one service only.
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "push-${var.model_name}"
  display_name = "Pub/Sub push to model-${var.model_name}"
  description  = "OIDC identity of subscription ${local.push_subscription_name}; may invoke Cloud Run service ${var.service_name} only."
}

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  project  = var.project_id
  location = var.region
  name     = var.service_name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# Lets the Pub/Sub service agent mint OIDC tokens for the push identity
# (required for projects created before April 2021, harmless after).
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent}"
}

resource "google_pubsub_topic_iam_member" "api_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.model.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.publisher_service_account}"
}

resource "google_pubsub_subscription" "push" {
  project = var.project_id
  name    = local.push_subscription_name
  topic   = google_pubsub_topic.model.id

  ack_deadline_seconds = var.ack_deadline_seconds

  push_config {
    push_endpoint = "${var.service_uri}/"

    oidc_token {
      service_account_email = google_service_account.push.email
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

  # The default policy deletes a subscription after 31 idle days; a rarely
  # used model must keep receiving.
  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.push_invoker,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

resource "google_pubsub_subscription" "dead_letter_push" {
  project = var.project_id
  name    = local.dead_letter_subscription_name
  topic   = google_pubsub_topic.dead_letter.id

  ack_deadline_seconds = 60

  push_config {
    push_endpoint = "${var.dead_letter_uri}/"

    oidc_token {
      service_account_email = var.dead_letter_push_service_account
      audience              = var.dead_letter_uri
    }
  }

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = var.maximum_backoff
  }

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering: the Pub/Sub service agent republishes undeliverable messages
# to the dead-letter topic and acknowledges them on the source subscription.
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
