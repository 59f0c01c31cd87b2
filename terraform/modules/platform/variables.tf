variable "project_id" {
  description = "Project in which the APIs are enabled and the repository is created."
  type        = string
}

variable "region" {
  description = "Location of the Artifact Registry repository."
  type        = string
}

variable "repository_id" {
  description = "ID of the Docker repository for the model-service image."
  type        = string
}

variable "services" {
  description = "Google APIs the deployment needs."
  type        = set(string)
  default = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]

  validation {
    condition     = alltrue([for s in var.services : endswith(s, ".googleapis.com")])
    error_message = "services must be API service names ending in .googleapis.com."
  }
}

variable "untagged_image_retention_days" {
  description = "Untagged images older than this are deleted from the repository; images a revision still uses are referenced by digest and tagged by Cloud Build, so they are kept."
  type        = number
  default     = 30

  validation {
    condition     = var.untagged_image_retention_days >= 1
    error_message = "untagged_image_retention_days must be at least 1."
  }
}
