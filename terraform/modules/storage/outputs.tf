output "uploads_bucket" {
  description = "Name of the uploads bucket."
  value       = google_storage_bucket.uploads.name
}

output "models_bucket" {
  description = "Name of the model-repository bucket."
  value       = google_storage_bucket.models.name
}

output "function_source_bucket" {
  description = "Name of the bucket holding the function source archives."
  value       = google_storage_bucket.function_source.name
}

output "jobs_bucket" {
  description = "Name of the bucket of bulk jobs' uploaded inputs and results."
  value       = google_storage_bucket.jobs.name
}
