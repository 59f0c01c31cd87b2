# Images sent to the API. Short-lived by design: a lifecycle rule deletes them.
resource "google_storage_bucket" "uploads" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access); usage-log buckets are a legacy mechanism.
  #checkov:skip=CKV_GCP_78:Uploads are write-once and expire after uploads_retention_days; versioning would only keep deleted images longer.
  name                        = "${var.project_id}-uploads"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = var.uploads_retention_days
    }
    action {
      type = "Delete"
    }
  }

  cors {
    origin          = var.cors_origins
    method          = ["GET", "HEAD", "PUT", "POST"]
    response_header = ["Content-Type", "Content-Length", "Content-MD5", "x-goog-resumable"]
    max_age_seconds = 3600
  }
}

# Bulk jobs: inputs that `inference jobs submit` uploads from a local folder
# (under jobs-input/) and the results of jobs whose output is here. A job's
# input and output may as well be the user's own buckets (see README.md).
resource "google_storage_bucket" "jobs" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access); usage-log buckets are a legacy mechanism.
  #checkov:skip=CKV_GCP_78:Job inputs and results are written once and expire after jobs_retention_days; versioning would only keep deleted objects longer.
  name                        = "${var.project_id}-jobs"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = var.jobs_retention_days
    }
    action {
      type = "Delete"
    }
  }
}

# The model repository: <root>/<model>/<version>/ under gs://<bucket>/models.
resource "google_storage_bucket" "models" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access); usage-log buckets are a legacy mechanism.
  name                        = "${var.project_id}-models"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # The exported models (and their old object versions) go with the bucket only
  # once deletion protection is off, as the tear-down in README.md does.
  force_destroy = !var.deletion_protection

  # An overwritten or deleted model version can be restored.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
    }
    action {
      type = "Delete"
    }
  }
}

# Zip archives of functions/ that Cloud Functions builds from.
resource "google_storage_bucket" "function_source" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access); usage-log buckets are a legacy mechanism.
  name                        = "${var.project_id}-function-source"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
    }
    action {
      type = "Delete"
    }
  }
}
