variable "project_id" {
  description = "Project of the Firestore database."
  type        = string
}

variable "location" {
  description = "Firestore location ID (region or multi-region). Cannot be changed once the database exists."
  type        = string
}

variable "deletion_protection" {
  description = "Enable Firestore delete protection and keep the database when the resource is destroyed."
  type        = bool
}

variable "predictions_collection" {
  description = "Collection that holds prediction documents (fixed by the interface contract)."
  type        = string
  default     = "predictions"
}

variable "ttl_field" {
  description = "Timestamp field on prediction documents that the TTL policy expires them by; the API sets it to creation time + PREDICTION_TTL_DAYS."
  type        = string
  default     = "expire_at"
}

variable "reconcile_field" {
  description = "Timestamp field on prediction documents that the reconciler queries (reconcile_at <= now, ordered by it)."
  type        = string
  default     = "reconcile_at"

  validation {
    condition     = var.reconcile_field != var.ttl_field
    error_message = "reconcile_field must differ from ttl_field: one google_firestore_field resource per field."
  }
}

variable "idempotency_collection" {
  description = "Collection of the API's Idempotency-Key records, whose expire_at gets a TTL policy."
  type        = string
  default     = "idempotency_keys"
}

variable "jobs_collection" {
  description = "Collection of bulk job documents (fixed by the interface contract), whose listing query gets its composite indexes here."
  type        = string
  default     = "jobs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]*$", var.jobs_collection))
    error_message = "jobs_collection must be a collection ID of lowercase letters, digits and underscores."
  }
}

variable "job_shards_collection" {
  description = "Collection of bulk jobs' shard documents (fixed by the interface contract): TTL on expire_at, and its input list left unindexed."
  type        = string
  default     = "job_shards"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]*$", var.job_shards_collection))
    error_message = "job_shards_collection must be a collection ID of lowercase letters, digits and underscores."
  }
}

variable "job_shard_inputs_field" {
  description = "Array field of a shard document that lists its input URIs; exempted from indexing."
  type        = string
  default     = "inputs"

  validation {
    condition     = var.job_shard_inputs_field != var.ttl_field
    error_message = "job_shard_inputs_field must differ from ttl_field: one google_firestore_field resource per field."
  }
}
