variable "project_id" {
  description = "Google Cloud project ID that hosts every resource."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid project ID: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region for Cloud Run, Cloud Functions, Artifact Registry and the buckets; Cloud Build runs must be submitted in the same region. scripts/bootstrap.sh writes it into terraform.tfvars.json, its one home. Pick one that offers NVIDIA L4 on Cloud Run if any model uses a GPU."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like a Google Cloud region, e.g. us-central1."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database (a region such as us-central1 or a multi-region such as nam5). Null uses var.region."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^[a-z0-9-]+$", var.firestore_location))
    error_message = "firestore_location must be a Firestore location ID such as us-central1 or nam5."
  }
}

variable "models" {
  description = <<-EOT
    Models served, keyed by model name (adding a model is one entry). Each entry:
    accelerator ("cpu" or "gpu"; gpu means one NVIDIA L4), min_instances, max_instances,
    concurrency (requests per instance, also the gunicorn thread count), cpu, memory,
    gpu_zonal_redundancy_disabled (gpu only), ack_deadline_seconds, jobs_ack_deadline_seconds
    (the bulk-jobs push subscription's, fitting one shard), the model service's
    batching and lease settings (max_batch_size, max_batch_delay_ms, run_lease_seconds,
    model_ready_wait_seconds), its threads per model call and model calls at once
    (model_threads, concurrent_batches), revisions (revision key -> {model_version, image}), traffic
    (revision key -> percent, summing to 100) and canary_tag (tag URL name given to the
    newest revision). The newest revision (highest model_version, ties broken by the greater
    key) is the one the service template deploys; see README.md, "Rollouts".
  EOT
  type = map(object({
    accelerator                   = optional(string, "cpu")
    min_instances                 = optional(number, 0)
    max_instances                 = optional(number, 3)
    concurrency                   = optional(number, 32)
    cpu                           = optional(string, "2")
    memory                        = optional(string, "4Gi")
    gpu_zonal_redundancy_disabled = optional(bool, true)
    ack_deadline_seconds          = optional(number, 60)
    jobs_ack_deadline_seconds     = optional(number, 300)
    max_batch_size                = optional(number, 16)
    max_batch_delay_ms            = optional(number, 0)
    run_lease_seconds             = optional(number, 10)
    model_ready_wait_seconds      = optional(number, 30)
    model_threads                 = optional(number, 0)
    concurrent_batches            = optional(number, 1)
    revisions = map(object({
      model_version = number
      image         = string
    }))
    traffic              = map(number)
    canary_tag           = optional(string)
    last_revision_serial = optional(number, 0)
  }))

  validation {
    condition     = length(var.models) > 0
    error_message = "models must contain at least one model."
  }

  validation {
    # Model names end up in service, topic and service-account names (<= 30 chars).
    condition     = alltrue([for name in keys(var.models) : can(regex("^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$", name))])
    error_message = "Model names must be 1-20 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }

  validation {
    condition     = alltrue([for m in values(var.models) : contains(["cpu", "gpu"], m.accelerator)])
    error_message = "Each model's accelerator must be \"cpu\" or \"gpu\"."
  }

  validation {
    condition     = alltrue([for m in values(var.models) : contains(["1", "2", "4", "6", "8"], m.cpu)])
    error_message = "Each model's cpu must be one of \"1\", \"2\", \"4\", \"6\", \"8\" (gpu models are raised to at least 4)."
  }

  validation {
    condition = alltrue([
      for m in values(var.models) :
      can(regex("^[0-9]+Gi$", m.memory)) && try(tonumber(trimsuffix(m.memory, "Gi")) >= 1 && tonumber(trimsuffix(m.memory, "Gi")) <= 32, false)
    ])
    error_message = "Each model's memory must be whole gibibytes between 1Gi and 32Gi, e.g. \"4Gi\" (gpu models are raised to at least 16Gi)."
  }

  validation {
    # Cloud Run's CPU and memory table for services: 1 CPU up to 4Gi, 2 up to
    # 8Gi, 4 from 2Gi to 16Gi, 6 from 4Gi to 24Gi, 8 from 4Gi to 32Gi; checked
    # on the values deployed, after a gpu model's raise to 4 CPUs and 16Gi.
    condition = alltrue([
      for m in values(var.models) : try(
        (m.accelerator == "gpu" ? max(16, tonumber(trimsuffix(m.memory, "Gi"))) : tonumber(trimsuffix(m.memory, "Gi"))) <=
        lookup({ "1" = 4, "2" = 8, "4" = 16, "6" = 24, "8" = 32 }, m.accelerator == "gpu" ? tostring(max(4, tonumber(m.cpu))) : m.cpu, 0) &&
        (m.accelerator == "gpu" ? max(16, tonumber(trimsuffix(m.memory, "Gi"))) : tonumber(trimsuffix(m.memory, "Gi"))) >=
        lookup({ "1" = 1, "2" = 1, "4" = 2, "6" = 4, "8" = 4 }, m.accelerator == "gpu" ? tostring(max(4, tonumber(m.cpu))) : m.cpu, 99),
        false
      )
    ])
    error_message = "Each model's cpu and memory must be a pair Cloud Run accepts: cpu \"1\" up to 4Gi, \"2\" up to 8Gi, \"4\" 2Gi-16Gi, \"6\" 4Gi-24Gi, \"8\" 4Gi-32Gi (a gpu model runs with at least 4 CPUs and 16Gi, so above 16Gi it needs cpu \"6\" or \"8\")."
  }

  validation {
    condition = alltrue([
      for m in values(var.models) :
      m.min_instances >= 0 && m.max_instances >= 1 && m.min_instances <= m.max_instances &&
      floor(m.min_instances) == m.min_instances && floor(m.max_instances) == m.max_instances
    ])
    error_message = "Each model needs whole numbers 0 <= min_instances <= max_instances, with max_instances >= 1."
  }

  validation {
    condition     = alltrue([for m in values(var.models) : m.concurrency >= 1 && m.concurrency <= 1000 && floor(m.concurrency) == m.concurrency])
    error_message = "Each model's concurrency must be a whole number between 1 and 1000."
  }

  validation {
    # Pub/Sub accepts ack deadlines of 10-600 s.
    condition     = alltrue([for m in values(var.models) : m.ack_deadline_seconds >= 10 && m.ack_deadline_seconds <= 600 && floor(m.ack_deadline_seconds) == m.ack_deadline_seconds])
    error_message = "Each model needs a whole 10 <= ack_deadline_seconds <= 600."
  }

  validation {
    # One push carries a whole shard of a bulk job; Pub/Sub's range again.
    condition     = alltrue([for m in values(var.models) : m.jobs_ack_deadline_seconds >= 10 && m.jobs_ack_deadline_seconds <= 600 && floor(m.jobs_ack_deadline_seconds) == m.jobs_ack_deadline_seconds])
    error_message = "Each model needs a whole 10 <= jobs_ack_deadline_seconds <= 600."
  }

  validation {
    condition = alltrue([
      for m in values(var.models) :
      m.max_batch_size >= 1 && m.max_batch_size <= 256 && floor(m.max_batch_size) == m.max_batch_size &&
      m.max_batch_delay_ms >= 0 && m.max_batch_delay_ms <= 1000 && floor(m.max_batch_delay_ms) == m.max_batch_delay_ms
    ])
    error_message = "Each model needs whole numbers 1 <= max_batch_size <= 256 and 0 <= max_batch_delay_ms <= 1000."
  }

  validation {
    condition = alltrue([
      for m in values(var.models) :
      m.model_threads >= 0 && m.model_threads <= 64 && floor(m.model_threads) == m.model_threads &&
      m.concurrent_batches >= 1 && m.concurrent_batches <= 64 && floor(m.concurrent_batches) == m.concurrent_batches
    ])
    error_message = "Each model needs whole numbers 0 <= model_threads <= 64 and 1 <= concurrent_batches <= 64."
  }

  validation {
    # Each request holds a thread while its batch runs: with fewer threads than
    # max_batch_size a full batch can never form.
    condition     = alltrue([for m in values(var.models) : m.concurrency >= m.max_batch_size])
    error_message = "Each model's concurrency (its gunicorn threads) must be at least its max_batch_size, or a full batch can never form."
  }

  validation {
    # The service renews a running prediction's lease with a heartbeat, so the
    # lease only bounds how long a crashed instance holds a prediction.
    condition = alltrue([
      for m in values(var.models) :
      m.run_lease_seconds >= 1 && m.run_lease_seconds <= 600 && floor(m.run_lease_seconds) == m.run_lease_seconds &&
      m.model_ready_wait_seconds >= 0 && m.model_ready_wait_seconds <= 600 && floor(m.model_ready_wait_seconds) == m.model_ready_wait_seconds
    ])
    error_message = "Each model needs whole numbers 1 <= run_lease_seconds <= 600 and 0 <= model_ready_wait_seconds <= 600."
  }

  validation {
    condition     = alltrue([for m in values(var.models) : length(m.revisions) > 0])
    error_message = "Each model needs at least one entry in revisions."
  }

  validation {
    # Revision keys become part of the Cloud Run revision name "model-<model>-<key>".
    condition = alltrue(flatten([
      for m in values(var.models) : [for key in keys(m.revisions) : can(regex("^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$", key))]
    ]))
    error_message = "Revision keys must be 1-20 lowercase letters, digits or hyphens, not starting or ending with a hyphen (e.g. v3)."
  }

  validation {
    condition = alltrue(flatten([
      for m in values(var.models) : [
        for r in values(m.revisions) :
        r.model_version >= 1 && floor(r.model_version) == r.model_version && (strcontains(r.image, "/") || r.image == "BUILD_IMAGE")
      ]
    ]))
    # BUILD_IMAGE passes here so that cloudbuild.yaml's bootstrap can apply the
    # platform before the images exist; modules/model_service refuses to deploy it.
    error_message = "Each revision needs a positive whole model_version and a full image reference (registry/path[:tag|@digest]) or the BUILD_IMAGE placeholder."
  }

  validation {
    condition = alltrue([
      for m in values(var.models) : alltrue([for key in keys(m.traffic) : contains(keys(m.revisions), key)])
    ])
    error_message = "Every traffic key must name an entry of the same model's revisions."
  }

  validation {
    condition = alltrue(flatten([
      for m in values(var.models) : [for p in values(m.traffic) : p >= 0 && p <= 100 && floor(p) == p]
    ]))
    error_message = "Traffic percentages must be whole numbers between 0 and 100."
  }

  validation {
    # concat([0], ...) keeps sum() defined for an empty traffic map.
    condition     = alltrue([for m in values(var.models) : sum(concat([0], values(m.traffic))) == 100])
    error_message = "Each model's traffic percentages must sum to exactly 100."
  }

  validation {
    condition = alltrue([
      for m in values(var.models) : m.last_revision_serial >= 0 && floor(m.last_revision_serial) == m.last_revision_serial
    ])
    error_message = "last_revision_serial must be a whole number >= 0 (scripts/rollout.py keeps it)."
  }

  validation {
    condition = alltrue([
      for m in values(var.models) : m.canary_tag == null || can(regex("^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$", coalesce(m.canary_tag, "x")))
    ])
    error_message = "canary_tag must be 1-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "model_ingress" {
  description = "Ingress setting of the model services. They accept only authenticated Pub/Sub pushes either way; INGRESS_TRAFFIC_INTERNAL_ONLY also hides them (and their tag URLs) from the internet."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.model_ingress)
    error_message = "model_ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "model_startup_timeout_seconds" {
  description = "How long a new model-service instance may take to download and load its model before the startup probe gives up. Cloud Run caps a service's startup probe window (failure_threshold x period_seconds) at 240 s."
  type        = number
  default     = 240

  validation {
    condition     = var.model_startup_timeout_seconds >= 10 && var.model_startup_timeout_seconds <= 240
    error_message = "model_startup_timeout_seconds must be between 10 and 240: Cloud Run refuses a startup probe whose window (failure_threshold x period_seconds) exceeds 240 s."
  }
}

variable "iam_propagation_seconds" {
  description = "Wait after IAM grants are created or changed, before the resources that use them (model-service revisions, which check secret access when created; function builds). Google documents that IAM changes usually take effect within 2 minutes."
  type        = number
  default     = 120

  validation {
    condition     = var.iam_propagation_seconds >= 0 && var.iam_propagation_seconds <= 600 && floor(var.iam_propagation_seconds) == var.iam_propagation_seconds
    error_message = "iam_propagation_seconds must be a whole number between 0 and 600."
  }
}

variable "log_metric_propagation_seconds" {
  description = "Wait after a log-based metric is created, before an alert policy on it is created: Cloud Monitoring answers 404 for up to 10 minutes on a new metric (terraform-provider-google#11102)."
  type        = number
  default     = 600

  validation {
    condition     = var.log_metric_propagation_seconds >= 0 && var.log_metric_propagation_seconds <= 1200 && floor(var.log_metric_propagation_seconds) == var.log_metric_propagation_seconds
    error_message = "log_metric_propagation_seconds must be a whole number between 0 and 1200."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of a prediction message before Pub/Sub moves it to the model's dead-letter topic. One value for every push subscription, also passed to the functions as MAX_DELIVERY_ATTEMPTS so the reconciler agrees with Pub/Sub."
  type        = number
  default     = 5

  validation {
    # Pub/Sub accepts 5-100 delivery attempts.
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number between 5 and 100."
  }
}

variable "redeliver_after_seconds" {
  description = "The reconciler republishes a prediction still queued, or running with an expired lease, this many seconds after its last attempt (REDELIVER_AFTER_SECONDS)."
  type        = number
  default     = 60

  validation {
    condition     = var.redeliver_after_seconds >= 10 && var.redeliver_after_seconds <= 86400 && floor(var.redeliver_after_seconds) == var.redeliver_after_seconds
    error_message = "redeliver_after_seconds must be a whole number between 10 and 86400."
  }
}

variable "max_prediction_age_seconds" {
  description = "The reconciler marks a prediction failed once it is this old without a final status (MAX_PREDICTION_AGE_SECONDS)."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_prediction_age_seconds >= 60 && var.max_prediction_age_seconds <= 604800 && floor(var.max_prediction_age_seconds) == var.max_prediction_age_seconds
    error_message = "max_prediction_age_seconds must be a whole number between 60 and 604800 (7 days)."
  }
}

variable "callback_retry_seconds" {
  description = "How long the reconciler keeps retrying a failed callback POST after the prediction finished (CALLBACK_RETRY_SECONDS)."
  type        = number
  default     = 3600

  validation {
    condition     = var.callback_retry_seconds >= 0 && var.callback_retry_seconds <= 604800 && floor(var.callback_retry_seconds) == var.callback_retry_seconds
    error_message = "callback_retry_seconds must be a whole number between 0 and 604800 (7 days)."
  }
}

variable "reconcile_schedule" {
  description = "Cron schedule (in UTC) on which Cloud Scheduler runs one reconciler pass."
  type        = string
  default     = "* * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.reconcile_schedule))) == 5
    error_message = "reconcile_schedule must be a five-field cron expression such as \"* * * * *\"."
  }
}

variable "artifact_registry_repository" {
  description = "ID of the Docker repository in Artifact Registry that holds the model-service image."
  type        = string
  default     = "inference"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.artifact_registry_repository))
    error_message = "artifact_registry_repository must be lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "uploads_retention_days" {
  description = "Uploaded images are deleted from the uploads bucket this many days after upload."
  type        = number
  default     = 7

  validation {
    condition     = var.uploads_retention_days >= 1 && var.uploads_retention_days <= 3650 && floor(var.uploads_retention_days) == var.uploads_retention_days
    error_message = "uploads_retention_days must be a whole number of days between 1 and 3650."
  }
}

variable "jobs_retention_days" {
  description = "Objects in the jobs bucket (inputs uploaded by `inference jobs submit`, results of jobs written there) are deleted this many days after they were written."
  type        = number
  default     = 30

  validation {
    condition     = var.jobs_retention_days >= 1 && var.jobs_retention_days <= 3650 && floor(var.jobs_retention_days) == var.jobs_retention_days
    error_message = "jobs_retention_days must be a whole number of days between 1 and 3650."
  }
}

variable "prediction_ttl_days" {
  description = "Predictions expire (Firestore TTL on expire_at) this many days after creation; passed to the API as PREDICTION_TTL_DAYS."
  type        = number
  default     = 30

  validation {
    condition     = var.prediction_ttl_days >= 1 && var.prediction_ttl_days <= 3650 && floor(var.prediction_ttl_days) == var.prediction_ttl_days
    error_message = "prediction_ttl_days must be a whole number of days between 1 and 3650."
  }
}

variable "max_image_bytes" {
  description = "Largest accepted image, in bytes (MAX_IMAGE_BYTES)."
  type        = number
  default     = 10485760

  validation {
    condition     = var.max_image_bytes >= 1024 && var.max_image_bytes <= 33554432
    error_message = "max_image_bytes must be between 1 KiB and 32 MiB (the Cloud Functions request limit)."
  }
}

variable "max_images_per_request" {
  description = "Most images accepted in one request (MAX_IMAGES_PER_REQUEST)."
  type        = number
  default     = 16

  validation {
    condition     = var.max_images_per_request >= 1 && var.max_images_per_request <= 256 && floor(var.max_images_per_request) == var.max_images_per_request
    error_message = "max_images_per_request must be a whole number between 1 and 256."
  }
}

variable "job_shard_size" {
  description = "Images per shard of a bulk job (JOB_SHARD_SIZE): one shard document, one message and one results file each, so Firestore writes per image fall as it grows; one shard's work must fit the models' jobs_ack_deadline_seconds, and its input URIs one Firestore document (1 MiB)."
  type        = number
  default     = 100

  validation {
    condition     = var.job_shard_size >= 1 && var.job_shard_size <= 1000 && floor(var.job_shard_size) == var.job_shard_size
    error_message = "job_shard_size must be a whole number between 1 and 1000."
  }
}

variable "max_job_images" {
  description = "Most images one bulk job may hold (MAX_JOB_IMAGES); a larger one is refused at submit. A submit lists its whole input and writes every shard document within one API request, so split a larger run into several jobs (README.md, Bulk jobs, In the cloud)."
  type        = number
  default     = 100000

  validation {
    condition     = var.max_job_images >= 1 && var.max_job_images <= 1000000 && floor(var.max_job_images) == var.max_job_images
    error_message = "max_job_images must be a whole number between 1 and 1000000."
  }
}

variable "allowed_origins" {
  description = "Extra browser origins allowed by CORS on the API and the uploads bucket, besides the website's own origin."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for origin in var.allowed_origins : can(regex("^https?://[^/,\\s]+$", origin))])
    error_message = "allowed_origins entries must be bare origins such as https://example.com (scheme and host, no path, no comma)."
  }
}

variable "website_origin" {
  description = "Origin the website is served from. Null means the bucket's public endpoint, https://storage.googleapis.com; set it when a custom domain fronts the bucket."
  type        = string
  default     = null

  validation {
    condition     = var.website_origin == null || can(regex("^https?://[^/,\\s]+$", coalesce(var.website_origin, "https://x")))
    error_message = "website_origin must be a bare origin such as https://www.example.com."
  }
}

variable "website_source_dir" {
  description = "Folder whose files are uploaded to the website bucket (config.js excepted: Terraform writes it). Relative paths are taken from the terraform/ directory; a missing folder uploads nothing."
  type        = string
  default     = "../web"
}

variable "website_public" {
  description = "Grant allUsers read access to the website bucket, which serving a static site straight from Cloud Storage requires. Set false when a CDN or load balancer with its own access path serves it."
  type        = bool
  default     = true
}

variable "api_public" {
  description = "Allow unauthenticated calls to the HTTP API function (allUsers run.invoker). It is the product's public endpoint; set false to require IAM-authenticated callers."
  type        = bool
  default     = true
}

variable "public_base_url" {
  description = "Optional public base URL of the API (e.g. a custom domain) used to build status_url links (PUBLIC_BASE_URL). Null lets the API use the request's own URL."
  type        = string
  default     = null

  validation {
    condition     = var.public_base_url == null || can(regex("^https://", coalesce(var.public_base_url, "https://x")))
    error_message = "public_base_url must be an https:// URL."
  }
}

variable "function_source_archive" {
  description = "Path of the zip archive of functions/ with the contract package (built by cloudbuild.yaml's packaging step, scripts/package_units.py). Relative paths are taken from the terraform/ directory."
  type        = string
  default     = "../build/functions.zip"

  validation {
    condition     = endswith(var.function_source_archive, ".zip")
    error_message = "function_source_archive must be a .zip file."
  }
}

variable "function_runtime" {
  description = "Cloud Functions runtime of the api, dead_letter and reconcile functions."
  type        = string
  default     = "python311"

  validation {
    condition     = contains(["python311", "python312", "python313"], var.function_runtime)
    error_message = "function_runtime must be python311, python312 or python313."
  }
}

variable "api_max_instances" {
  description = "Maximum instances of the API function."
  type        = number
  default     = 20

  validation {
    condition     = var.api_max_instances >= 1 && var.api_max_instances <= 1000 && floor(var.api_max_instances) == var.api_max_instances
    error_message = "api_max_instances must be a whole number between 1 and 1000."
  }
}

variable "api_memory" {
  description = "Memory of each API function instance."
  type        = string
  default     = "512Mi"

  validation {
    condition     = contains(["512Mi", "1Gi", "2Gi", "4Gi"], var.api_memory)
    error_message = "api_memory must be one of 512Mi, 1Gi, 2Gi, 4Gi."
  }
}

variable "deletion_protection" {
  description = "Protect the Cloud Run services and the Firestore database from `terraform destroy`. Set false (and apply) before tearing a test deployment down."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels added to every resource that supports them."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys and values must be lowercase letters, digits, underscores or hyphens (keys start with a letter)."
  }
}

variable "api_auth_required" {
  description = "Require an API key (X-API-Key) on every API request but health checks (AUTH_REQUIRED). Keys are stored hashed in Firestore's api_keys collection; create them with scripts/api_keys.py --firestore."
  type        = bool
  default     = true
}

variable "api_key_cache_seconds" {
  description = "How long an API instance trusts a key it has looked up (API_KEY_CACHE_SECONDS); a revoked key stops working within this time."
  type        = number
  default     = 30

  validation {
    condition     = var.api_key_cache_seconds >= 0 && var.api_key_cache_seconds <= 3600 && floor(var.api_key_cache_seconds) == var.api_key_cache_seconds
    error_message = "api_key_cache_seconds must be a whole number between 0 and 3600."
  }
}

variable "callback_signing_secret" {
  description = "Secret Manager secret (in this project) holding the Standard Webhooks secret, whsec_<base64>, that model services sign callbacks with (CALLBACK_SIGNING_SECRET). scripts/bootstrap.sh creates it, so its value never enters Terraform state."
  type        = string
  default     = "callback-signing-secret"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.callback_signing_secret))
    error_message = "callback_signing_secret must be a Secret Manager secret id: 1-255 letters, digits, hyphens or underscores."
  }
}

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channel IDs (projects/<p>/notificationChannels/<id>) that the dead-letter and queue-age alerts notify; empty: incidents show in the console only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for channel in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", channel))])
    error_message = "Each alert_notification_channels entry must be projects/<project>/notificationChannels/<id>."
  }
}

variable "dead_letter_alert_threshold" {
  description = "Dead-lettered messages in 5 minutes, summed over all models, above which the dead-letter alert opens (0: any)."
  type        = number
  default     = 0

  validation {
    condition     = var.dead_letter_alert_threshold >= 0 && floor(var.dead_letter_alert_threshold) == var.dead_letter_alert_threshold
    error_message = "dead_letter_alert_threshold must be a whole number >= 0."
  }
}

variable "oldest_queued_alert_seconds" {
  description = "Age in seconds of the oldest queued prediction above which the queue-age alert opens."
  type        = number
  default     = 300

  validation {
    condition     = var.oldest_queued_alert_seconds >= 60
    error_message = "oldest_queued_alert_seconds must be at least 60: the reconciler measures once a minute."
  }
}
