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
  description = "Local path of the zip archive of functions/ with the contract package (main.py at its root; scripts/package_units.py)."
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

variable "reconcile_function_name" {
  description = "Name of the reconciler function (entry point `reconcile`), run by Cloud Scheduler."
  type        = string
  default     = "prediction-reconcile"
}

variable "uploads_bucket" {
  description = "Bucket the API writes uploaded images to (UPLOADS_BUCKET)."
  type        = string
}

variable "jobs_bucket" {
  description = "Bucket of bulk jobs' uploaded inputs and results, which the API lists, reads and probes for writing."
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

variable "job_shard_size" {
  description = "Images per shard of a bulk job (JOB_SHARD_SIZE)."
  type        = number
}

variable "max_job_images" {
  description = "Most images one bulk job may hold (MAX_JOB_IMAGES)."
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

variable "redeliver_after_seconds" {
  description = "REDELIVER_AFTER_SECONDS: the reconciler republishes a stuck prediction this long after its last attempt."
  type        = number

  validation {
    condition     = var.redeliver_after_seconds >= 10
    error_message = "redeliver_after_seconds must be at least 10."
  }
}

variable "max_prediction_age_seconds" {
  description = "MAX_PREDICTION_AGE_SECONDS: the reconciler fails a prediction that is older than this and not final."
  type        = number

  validation {
    condition     = var.max_prediction_age_seconds >= 60
    error_message = "max_prediction_age_seconds must be at least 60."
  }
}

variable "max_delivery_attempts" {
  description = "MAX_DELIVERY_ATTEMPTS: the push subscriptions' dead-letter threshold, which the reconciler must agree with."
  type        = number

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "callback_retry_seconds" {
  description = "CALLBACK_RETRY_SECONDS: how long the reconciler retries a failed callback."
  type        = number

  validation {
    condition     = var.callback_retry_seconds >= 0
    error_message = "callback_retry_seconds must not be negative."
  }
}

variable "reconcile_schedule" {
  description = "Cron schedule (UTC) of the Cloud Scheduler job that runs one reconciler pass."
  type        = string

  validation {
    condition     = length(split(" ", trimspace(var.reconcile_schedule))) == 5
    error_message = "reconcile_schedule must be a five-field cron expression."
  }
}

variable "reconcile_attempt_deadline_seconds" {
  description = "How long Cloud Scheduler waits for one reconciler pass to answer; also the function's timeout."
  type        = number
  default     = 50

  validation {
    # A pass must end before the next one-minute tick; Scheduler accepts 15 s - 30 min for HTTP targets.
    condition     = var.reconcile_attempt_deadline_seconds >= 15 && var.reconcile_attempt_deadline_seconds <= 1800
    error_message = "reconcile_attempt_deadline_seconds must be between 15 and 1800."
  }
}

variable "auth_required" {
  description = "Require an API key (X-API-Key) on the API (AUTH_REQUIRED); keys are in Firestore's api_keys collection."
  type        = bool
  default     = true
}

variable "api_key_cache_seconds" {
  description = "How long an API instance trusts a key it has looked up (API_KEY_CACHE_SECONDS)."
  type        = number
  default     = 30

  validation {
    condition     = var.api_key_cache_seconds >= 0 && var.api_key_cache_seconds <= 3600
    error_message = "api_key_cache_seconds must be between 0 and 3600."
  }
}

variable "iam_propagation_seconds" {
  description = "Wait after this module's IAM grants are created or changed, before the functions are built and deployed with them."
  type        = number

  validation {
    condition     = var.iam_propagation_seconds >= 0 && var.iam_propagation_seconds <= 600
    error_message = "iam_propagation_seconds must be between 0 and 600."
  }
}
