output "api_url" {
  description = "Base URL of the public HTTP API (the `api` Cloud Function)."
  value       = module.api_function.api_uri
}

output "api_service_account_email" {
  description = "The functions' service account: users grant it roles/storage.objectViewer on buckets whose gs:// images they send."
  value       = module.api_function.service_account_email
}

output "website_url" {
  description = "URL of the static website's index page."
  value       = module.website.website_url
}

output "model_service_urls" {
  description = "Main URL of each model's Cloud Run service, keyed by model name (reachable only with run.invoker)."
  value       = { for name, service in module.model_service : name => service.service_uri }
}

output "model_template_revisions" {
  description = "Cloud Run revision each model's template deploys (model-<model>-<key>-<template hash>), keyed by model name."
  value       = { for name, service in module.model_service : name => service.template_revision }
}

output "model_canary_urls" {
  description = "Tag URL of each model's canary revision, keyed by model name; only models with a canary_tag appear."
  value = {
    for name, service in module.model_service : name => service.canary_url if service.canary_url != null
  }
}

output "model_topics" {
  description = "Pub/Sub topic of each model, keyed by model name."
  value       = { for name, routing in module.model_routing : name => routing.topic_name }
}

output "artifact_registry_repository_url" {
  description = "Docker repository URL to push the model-service image to."
  value       = module.platform.repository_url
}

output "uploads_bucket" {
  description = "Name of the bucket that receives uploaded images."
  value       = module.storage.uploads_bucket
}

output "models_bucket" {
  description = "Name of the bucket that holds the model repository (under models/)."
  value       = module.storage.models_bucket
}

output "model_repository" {
  description = "Model repository root the model services read (MODEL_REPOSITORY); export models here with scripts/export_model.py."
  value       = "gs://${module.storage.models_bucket}/models"
}

output "reconcile_url" {
  description = "URL of the reconcile function, which Cloud Scheduler calls with an OIDC token (not public)."
  value       = module.api_function.reconcile_uri
}

output "monitoring_dashboard_id" {
  description = "ID of the Cloud Monitoring dashboard \"Inference service\" (Console: Monitoring > Dashboards)."
  value       = module.monitoring.dashboard_id
}

output "jobs_bucket" {
  description = "Bucket for bulk jobs: `inference jobs submit` uploads a local folder here (INFERENCE_JOBS_BUCKET) and a job may write its results here."
  value       = module.storage.jobs_bucket
}

output "job_topics" {
  description = "Pub/Sub topic of each model's bulk jobs (one message per shard), keyed by model name."
  value       = { for name, routing in module.job_routing : name => routing.topic_name }
}
