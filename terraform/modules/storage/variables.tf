variable "project_id" {
  description = "Project that owns the buckets; also the bucket-name prefix, which keeps the names globally unique."
  type        = string
}

variable "region" {
  description = "Location of the buckets (same region as the services that read them)."
  type        = string
}

variable "uploads_retention_days" {
  description = "Age in days after which uploaded images are deleted."
  type        = number

  validation {
    condition     = var.uploads_retention_days >= 1
    error_message = "uploads_retention_days must be at least 1."
  }
}

variable "jobs_retention_days" {
  description = "Age in days after which objects in the jobs bucket (uploaded job inputs, job results) are deleted."
  type        = number

  validation {
    condition     = var.jobs_retention_days >= 1
    error_message = "jobs_retention_days must be at least 1."
  }
}

variable "cors_origins" {
  description = "Browser origins (the website's and any extra ones) allowed to read and write the uploads bucket with CORS."
  type        = list(string)
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced object version is kept in the versioned buckets (models, function sources)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

variable "deletion_protection" {
  description = "Keep the model repository bucket from being destroyed while it holds objects (force_destroy is its negation)."
  type        = bool
}
