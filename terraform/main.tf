provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = merge({ app = "inference" }, var.labels)
}

provider "google-beta" {
  project        = var.project_id
  region         = var.region
  default_labels = merge({ app = "inference" }, var.labels)
}

locals {
  # The Pub/Sub service agent signs push OIDC tokens and moves messages to
  # dead-letter topics; it needs the grants made in modules/model_routing and
  # modules/api_function. modules/platform creates it first.
  pubsub_service_agent = module.platform.pubsub_service_agent

  website_origin  = coalesce(var.website_origin, "https://storage.googleapis.com")
  allowed_origins = distinct(concat([local.website_origin], var.allowed_origins))
}

module "platform" {
  source = "./modules/platform"

  project_id    = var.project_id
  region        = var.region
  repository_id = var.artifact_registry_repository
}

module "storage" {
  source = "./modules/storage"

  project_id             = var.project_id
  region                 = var.region
  uploads_retention_days = var.uploads_retention_days
  jobs_retention_days    = var.jobs_retention_days
  cors_origins           = local.allowed_origins
  deletion_protection    = var.deletion_protection

  depends_on = [module.platform]
}

module "firestore" {
  source = "./modules/firestore"

  project_id          = var.project_id
  location            = coalesce(var.firestore_location, var.region)
  deletion_protection = var.deletion_protection

  depends_on = [module.platform]
}

# One Cloud Run service (with its own service account) per models entry.
module "model_service" {
  source   = "./modules/model_service"
  for_each = var.models

  project_id              = var.project_id
  region                  = var.region
  model_name              = each.key
  model                   = each.value
  callback_signing_secret = var.callback_signing_secret
  model_repository        = "gs://${module.storage.models_bucket}/models"
  uploads_bucket          = module.storage.uploads_bucket
  models_bucket           = module.storage.models_bucket
  ingress                 = var.model_ingress
  startup_timeout_seconds = var.model_startup_timeout_seconds
  iam_propagation_seconds = var.iam_propagation_seconds
  deletion_protection     = var.deletion_protection

  depends_on = [module.platform]
}

module "api_function" {
  source = "./modules/api_function"

  project_id              = var.project_id
  region                  = var.region
  source_bucket           = module.storage.function_source_bucket
  source_archive          = abspath(var.function_source_archive)
  runtime                 = var.function_runtime
  uploads_bucket          = module.storage.uploads_bucket
  jobs_bucket             = module.storage.jobs_bucket
  model_names             = sort(keys(var.models))
  allowed_origins         = local.allowed_origins
  max_image_bytes         = var.max_image_bytes
  max_images_per_request  = var.max_images_per_request
  job_shard_size          = var.job_shard_size
  max_job_images          = var.max_job_images
  prediction_ttl_days     = var.prediction_ttl_days
  public_base_url         = var.public_base_url
  max_instances           = var.api_max_instances
  memory                  = var.api_memory
  api_public              = var.api_public
  auth_required           = var.api_auth_required
  api_key_cache_seconds   = var.api_key_cache_seconds
  pubsub_service_agent    = local.pubsub_service_agent
  iam_propagation_seconds = var.iam_propagation_seconds

  # Reconciler settings, shared by the three entry points. The reconciler's
  # MAX_DELIVERY_ATTEMPTS is the push subscriptions' own value.
  redeliver_after_seconds    = var.redeliver_after_seconds
  max_prediction_age_seconds = var.max_prediction_age_seconds
  max_delivery_attempts      = var.max_delivery_attempts
  callback_retry_seconds     = var.callback_retry_seconds
  reconcile_schedule         = var.reconcile_schedule

  depends_on = [module.platform, module.firestore]
}

# One topic, dead-letter topic and pair of push subscriptions per models entry.
module "model_routing" {
  source   = "./modules/model_routing"
  for_each = var.models

  project_id                       = var.project_id
  region                           = var.region
  model_name                       = each.key
  ack_deadline_seconds             = each.value.ack_deadline_seconds
  max_delivery_attempts            = var.max_delivery_attempts
  service_name                     = module.model_service[each.key].service_name
  service_uri                      = module.model_service[each.key].service_uri
  dead_letter_uri                  = module.api_function.dead_letter_uri
  dead_letter_push_service_account = module.api_function.dead_letter_invoker_email
  publisher_service_account        = module.api_function.service_account_email
  pubsub_service_agent             = local.pubsub_service_agent

  depends_on = [module.platform]
}

# Bulk jobs' own lane per models entry: topic jobs-<model>, its push
# subscription to the model service's /jobs path, dead-lettering (kept for
# inspection), and the model service account's access to the jobs bucket.
module "job_routing" {
  source   = "./modules/job_routing"
  for_each = var.models

  project_id                = var.project_id
  model_name                = each.key
  ack_deadline_seconds      = each.value.jobs_ack_deadline_seconds
  max_delivery_attempts     = var.max_delivery_attempts
  service_uri               = module.model_service[each.key].service_uri
  push_service_account      = module.model_routing[each.key].push_service_account_email
  model_service_account     = module.model_service[each.key].service_account_email
  jobs_bucket               = module.storage.jobs_bucket
  publisher_service_account = module.api_function.service_account_email
  pubsub_service_agent      = local.pubsub_service_agent

  depends_on = [module.platform]
}

module "website" {
  source = "./modules/website"

  project_id = var.project_id
  region     = var.region
  api_url    = module.api_function.api_uri
  source_dir = abspath(var.website_source_dir)
  public     = var.website_public

  depends_on = [module.platform]
}

# Log-based metrics, the dashboard "Inference service" and the dead-letter and
# queue-age alert policies (the figures the local stack serves at /metrics).
module "monitoring" {
  source = "./modules/monitoring"

  project_id                  = var.project_id
  model_names                 = sort(keys(var.models))
  notification_channels       = var.alert_notification_channels
  dead_letter_alert_threshold = var.dead_letter_alert_threshold
  oldest_queued_alert_seconds = var.oldest_queued_alert_seconds
  metric_propagation_seconds  = var.log_metric_propagation_seconds

  depends_on = [module.platform]
}
