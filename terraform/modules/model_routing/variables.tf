variable "project_id" {
  description = "Project of the topics and subscriptions."
  type        = string
}

variable "region" {
  description = "Region of the model's Cloud Run service."
  type        = string
}

variable "model_name" {
  description = "Model routed; its topics and subscriptions are named by contract/inference_contract/naming.json: predictions-<model>, predictions-<model>-push, predictions-<model>-dead-letter, predictions-<model>-dead-letter-push."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$", var.model_name))
    error_message = "model_name must be 1-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "ack_deadline_seconds" {
  description = "Ack deadline of the push subscription: the model service's latency budget for one message."
  type        = number

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message is moved to the dead-letter topic."
  type        = number

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "minimum_backoff" {
  description = "Shortest wait before Pub/Sub redelivers a message that was not acknowledged."
  type        = string
  default     = "10s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.minimum_backoff))
    error_message = "minimum_backoff must be a duration in seconds such as 10s."
  }
}

variable "maximum_backoff" {
  description = "Longest wait before Pub/Sub redelivers a message that was not acknowledged."
  type        = string
  default     = "300s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.maximum_backoff))
    error_message = "maximum_backoff must be a duration in seconds such as 300s."
  }
}

variable "service_name" {
  description = "Name of the model's Cloud Run service; the push service account may invoke it and nothing else."
  type        = string
}

variable "service_uri" {
  description = "URL of the model's Cloud Run service: push endpoint (POST /) and OIDC audience."
  type        = string
}

variable "dead_letter_uri" {
  description = "URL of the dead_letter function that marks predictions failed."
  type        = string
}

variable "dead_letter_push_service_account" {
  description = "Email of the service account whose OIDC token the dead-letter push subscription presents (it may invoke the dead_letter function only)."
  type        = string
}

variable "publisher_service_account" {
  description = "Email of the API function's service account, which publishes to the model topic."
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
