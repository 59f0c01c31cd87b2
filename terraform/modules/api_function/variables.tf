variable "project_id" {
  description = "Project of the functions."
  type        = string
}

variable "region" {
  description = "Region of the functions."
  type        = string
}

variable "source_bucket" {
  description = "Bucket the source archive is uploaded to for Cloud Functions to build from."
  type        = string
}

variable "source_archive" {
  description = "Local path of the zip archive of functions/ (main.py at its root)."
  type        = string

  validation {
    condition     = endswith(var.source_archive, ".zip")
    error_message = "source_archive must be a .zip file."
  }
}

variable "runtime" {
  description = "Cloud Functions runtime, e.g. python311."
  type        = string

  validation {
    condition     = can(regex("^python3[0-9]+$", var.runtime))
    error_message = "runtime must be a Python runtime such as python311."
  }
}

variable "api_function_name" {
  description = "Name of the public HTTP API function (entry point `api`)."
  type        = string
  default     = "prediction-api"
}

variable "dead_letter_function_name" {
  description = "Name of the dead-letter handler function (entry point `dead_letter`)."
  type        = string
  default     = "prediction-dead-letter"
}

variable "uploads_bucket" {
  description = "Bucket the API writes uploaded images to (UPLOADS_BUCKET)."
  type        = string
}

variable "model_names" {
  description = "Models the API accepts (MODELS, comma-joined)."
  type        = list(string)

  validation {
    condition     = length(var.model_names) > 0
    error_message = "model_names must list at least one model."
  }
}

variable "allowed_origins" {
  description = "CORS origins of the API (ALLOWED_ORIGINS, comma-joined)."
  type        = list(string)
}

variable "max_image_bytes" {
  description = "Largest accepted image in bytes (MAX_IMAGE_BYTES)."
  type        = number
}

variable "max_images_per_request" {
  description = "Most images per request (MAX_IMAGES_PER_REQUEST)."
  type        = number
}

variable "prediction_ttl_days" {
  description = "Days until a prediction expires (PREDICTION_TTL_DAYS)."
  type        = number
}

variable "public_base_url" {
  description = "Optional PUBLIC_BASE_URL used to build status_url links; null leaves it unset."
  type        = string
  default     = null
}

variable "max_instances" {
  description = "Maximum instances of the API function."
  type        = number

  validation {
    condition     = var.max_instances >= 1
    error_message = "max_instances must be at least 1."
  }
}

variable "memory" {
  description = "Memory of each API function instance, e.g. 512Mi."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "memory must look like 512Mi or 1Gi."
  }
}

variable "concurrency" {
  description = "Concurrent requests per API instance; each may hold several images in memory."
  type        = number
  default     = 8

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be between 1 and 1000."
  }
}

variable "api_public" {
  description = "Grant allUsers run.invoker on the API function (the product's public endpoint)."
  type        = bool
}

variable "pubsub_service_agent" {
  description = "Email of the Pub/Sub service agent, which mints OIDC tokens for the dead-letter push identity."
  type        = string
}
