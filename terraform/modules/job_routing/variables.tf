variable "project_id" {
  description = "Project of the jobs topics and subscriptions."
  type        = string
}

variable "model_name" {
  description = "Model whose bulk jobs are routed; its topic and subscriptions are named by contract/inference_contract/naming.json: jobs-<model>, jobs-<model>-push, and jobs-<model>-dead-letter (topic and pull subscription)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$", var.model_name))
    error_message = "model_name must be 1-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "ack_deadline_seconds" {
  description = "Ack deadline of the jobs push subscription: how long one shard's push may take (the model service holds it while it reads, predicts and writes the shard's results). The model service's request timeout is at least this."
  type        = number

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600 && floor(var.ack_deadline_seconds) == var.ack_deadline_seconds
    error_message = "ack_deadline_seconds must be a whole number between 10 and 600 (Pub/Sub's range)."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of a shard message before Pub/Sub moves it to the jobs dead-letter topic."
  type        = number

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number between 5 and 100."
  }
}

variable "minimum_backoff" {
  description = "Shortest wait before Pub/Sub redelivers a shard message that was not acknowledged (a busy or restarting model service)."
  type        = string
  default     = "10s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.minimum_backoff)) && try(tonumber(trimsuffix(var.minimum_backoff, "s")) <= 600, false)
    error_message = "minimum_backoff must be a duration in whole seconds, at most 600s, such as 10s."
  }
}

variable "maximum_backoff" {
  description = "Longest wait before Pub/Sub redelivers a shard message that was not acknowledged."
  type        = string
  default     = "600s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.maximum_backoff)) && try(tonumber(trimsuffix(var.maximum_backoff, "s")) <= 600, false)
    error_message = "maximum_backoff must be a duration in whole seconds, at most 600s, such as 600s."
  }
}

variable "service_uri" {
  description = "URL of the model's Cloud Run service: the push endpoint is its jobs path, the OIDC audience the URL itself."
  type        = string

  validation {
    condition     = startswith(var.service_uri, "https://")
    error_message = "service_uri must be the service's https:// URL."
  }
}

variable "jobs_path" {
  description = "Path of the model service's push endpoint for shard messages (POST)."
  type        = string
  default     = "/jobs"

  validation {
    condition     = can(regex("^/[a-z0-9/_-]+$", var.jobs_path))
    error_message = "jobs_path must be an absolute path such as /jobs."
  }
}

variable "push_service_account" {
  description = "Email of the model's push identity (modules/model_routing): it already holds run.invoker on this model's service only, and signs the jobs pushes' OIDC tokens too."
  type        = string
}

variable "dead_letter_retention" {
  description = "How long the dead-letter pull subscription keeps a dead-lettered shard message (Pub/Sub allows 10 minutes to 7 days)."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.dead_letter_retention)) && try(tonumber(trimsuffix(var.dead_letter_retention, "s")) >= 600 && tonumber(trimsuffix(var.dead_letter_retention, "s")) <= 604800, false)
    error_message = "dead_letter_retention must be whole seconds between 600s and 604800s (7 days), such as 604800s."
  }
}

variable "publisher_service_account" {
  description = "Email of the API function's service account, which publishes one message per shard to the jobs topic."
  type        = string
}

variable "model_service_account" {
  description = "Email of the model service's own account, which reads job inputs from and writes job results to the jobs bucket."
  type        = string
}

variable "jobs_bucket" {
  description = "Bucket that holds inputs uploaded for jobs (inference jobs submit with a local folder) and results written there."
  type        = string
}

variable "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent (service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com)."
  type        = string

  validation {
    condition     = endswith(var.pubsub_service_agent, "@gcp-sa-pubsub.iam.gserviceaccount.com")
    error_message = "pubsub_service_agent must be the Pub/Sub service agent's email."
  }
}
