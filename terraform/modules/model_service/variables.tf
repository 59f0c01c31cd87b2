variable "project_id" {
  description = "Project of the service."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run service."
  type        = string
}

variable "model_name" {
  description = "Model served (MODEL_NAME); the service is named model-<model_name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$", var.model_name))
    error_message = "model_name must be 1-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "model" {
  description = "The model's entry of the root `models` variable (defaults already applied): scaling, resources, revisions and traffic."
  type = object({
    accelerator                   = string
    min_instances                 = number
    max_instances                 = number
    concurrency                   = number
    cpu                           = string
    memory                        = string
    gpu_zonal_redundancy_disabled = bool
    ack_deadline_seconds          = number
    jobs_ack_deadline_seconds     = number
    max_batch_size                = number
    max_batch_delay_ms            = number
    run_lease_seconds             = number
    model_ready_wait_seconds      = number
    model_threads                 = number
    concurrent_batches            = number
    revisions = map(object({
      model_version = number
      image         = string
    }))
    traffic              = map(number)
    canary_tag           = string
    last_revision_serial = number
  })

  validation {
    condition     = contains(["cpu", "gpu"], var.model.accelerator)
    error_message = "model.accelerator must be \"cpu\" or \"gpu\"."
  }

  validation {
    condition     = sum(concat([0], values(var.model.traffic))) == 100
    error_message = "model.traffic percentages must sum to 100."
  }
}

variable "model_repository" {
  description = "Root of the model repository (MODEL_REPOSITORY), e.g. gs://PROJECT-models/models."
  type        = string

  validation {
    condition     = startswith(var.model_repository, "gs://")
    error_message = "model_repository must be a gs:// URI."
  }
}

variable "uploads_bucket" {
  description = "Bucket of uploaded images, which the service reads."
  type        = string
}

variable "models_bucket" {
  description = "Bucket of the model repository, which the service reads."
  type        = string
}

variable "ingress" {
  description = "Ingress setting of the service."
  type        = string

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "startup_timeout_seconds" {
  description = "Time a new instance gets to load its model before the startup probe fails it (10-240 s: Cloud Run's ceiling on a service's startup probe window)."
  type        = number

  validation {
    condition     = var.startup_timeout_seconds >= 10 && var.startup_timeout_seconds <= 240
    error_message = "startup_timeout_seconds must be between 10 and 240 (Cloud Run's ceiling on a startup probe's failure_threshold x period_seconds)."
  }
}

variable "iam_propagation_seconds" {
  description = "Wait after this module's IAM grants are created or changed, before the service's revision is created (Cloud Run checks secret access then)."
  type        = number

  validation {
    condition     = var.iam_propagation_seconds >= 0 && var.iam_propagation_seconds <= 600
    error_message = "iam_propagation_seconds must be between 0 and 600."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the service on terraform destroy."
  type        = bool
}

variable "container_port" {
  description = "Port gunicorn listens on (Cloud Run passes it as PORT)."
  type        = number
  default     = 8080

  validation {
    condition     = var.container_port > 0 && var.container_port < 65536
    error_message = "container_port must be a TCP port number."
  }
}

variable "health_path" {
  description = "Health endpoint of the model service: 200 once the model is loaded, 503 before."
  type        = string
  default     = "/healthz"

  validation {
    condition     = startswith(var.health_path, "/")
    error_message = "health_path must start with /."
  }
}

variable "callback_signing_secret" {
  description = "Secret Manager secret id whose latest version is the Standard Webhooks signing secret (CALLBACK_SIGNING_SECRET)."
  type        = string
  default     = "callback-signing-secret"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.callback_signing_secret))
    error_message = "callback_signing_secret must be a Secret Manager secret id."
  }
}
