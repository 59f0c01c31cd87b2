locals {
  service_name = "model-${var.model_name}"
  is_gpu       = var.model.accelerator == "gpu"

  # The newest revision (highest model_version, then highest serial, then the
  # greater key) is the one the template deploys; scripts/rollout.py applies
  # the same rule. rollout.py names new revisions v<version>-r<serial>, the
  # serial counting up per model and never reused; keys without one count as
  # serial 0. Older entries already exist in Cloud Run, which keeps past
  # revisions, so traffic can still be routed to them.
  revision_serials = { for key, rev in var.model.revisions : key => try(tonumber(regex("-r([0-9]+)$", key)[0]), 0) }
  revision_order   = sort([for key, rev in var.model.revisions : format("%012d/%012d/%s", rev.model_version, local.revision_serials[key], key)])
  newest_key       = split("/", local.revision_order[length(local.revision_order) - 1])[2]
  newest           = var.model.revisions[local.newest_key]

  # GPU settings exist only for accelerator = "gpu": one NVIDIA L4, which needs
  # at least 4 CPUs and 16 GiB of memory. The root `models` variable refuses a
  # pair that is invalid once raised.
  accelerator                   = local.is_gpu ? "nvidia-l4" : null
  gpu_zonal_redundancy_disabled = local.is_gpu ? var.model.gpu_zonal_redundancy_disabled : null
  cpu                           = local.is_gpu ? tostring(max(4, tonumber(var.model.cpu))) : var.model.cpu
  memory                        = local.is_gpu ? "${max(16, tonumber(trimsuffix(var.model.memory, "Gi")))}Gi" : var.model.memory
  limits = merge(
    { cpu = local.cpu, memory = local.memory },
    local.is_gpu ? { "nvidia.com/gpu" = "1" } : {},
  )

  # Environment shared by every revision; MODEL_VERSION is added per revision.
  shared_env = {
    MODEL_NAME           = var.model_name
    MODEL_REPOSITORY     = var.model_repository
    GOOGLE_CLOUD_PROJECT = var.project_id
    # One gunicorn worker; its threads are the request concurrency.
    GUNICORN_THREADS         = tostring(var.model.concurrency)
    MAX_BATCH_SIZE           = tostring(var.model.max_batch_size)
    MAX_BATCH_DELAY_MS       = tostring(var.model.max_batch_delay_ms)
    RUN_LEASE_SECONDS        = tostring(var.model.run_lease_seconds)
    MODEL_READY_WAIT_SECONDS = tostring(var.model.model_ready_wait_seconds)
    MODEL_THREADS            = tostring(var.model.model_threads)
    CONCURRENT_BATCHES       = tostring(var.model.concurrent_batches)
  }
  env = merge(local.shared_env, { MODEL_VERSION = tostring(local.newest.model_version) })

  # Every setting of the service template but the image and the model version,
  # which come from the revision. main.tf reads each template attribute from
  # here (a test refuses a literal there), so the hash below covers all of it.
  startup_probe_period_seconds = 10
  template = {
    max_instance_request_concurrency = var.model.concurrency
    # A push is redelivered after its ack deadline anyway; working longer is waste.
    # A bulk job's shard is pushed with the longer of the two deadlines, and
    # Cloud Run must not cut that request first.
    timeout                       = "${max(var.model.ack_deadline_seconds, var.model.jobs_ack_deadline_seconds)}s"
    execution_environment         = "EXECUTION_ENVIRONMENT_GEN2"
    min_instance_count            = var.model.min_instances
    max_instance_count            = var.model.max_instances
    accelerator                   = local.accelerator
    gpu_zonal_redundancy_disabled = local.gpu_zonal_redundancy_disabled
    port_name                     = "http1"
    container_port                = var.container_port
    limits                        = local.limits
    startup_cpu_boost             = true
    # GPU instances must keep their CPU allocated outside requests.
    cpu_idle        = !local.is_gpu
    shared_env      = local.shared_env
    secret_env_name = "CALLBACK_SIGNING_SECRET"
    secret          = var.callback_signing_secret
    # "latest" is read when an instance starts: to rotate, add a secret version
    # and deploy a new revision.
    secret_version = "latest"
    startup_probe = {
      initial_delay_seconds = 0
      period_seconds        = local.startup_probe_period_seconds
      timeout_seconds       = 5
      # The window (threshold x period) stays within Cloud Run's 240 s ceiling:
      # var.startup_timeout_seconds is validated against it.
      failure_threshold = ceil(var.startup_timeout_seconds / local.startup_probe_period_seconds)
      path              = var.health_path
    }
    liveness_probe = {
      period_seconds    = 30
      timeout_seconds   = 5
      failure_threshold = 3
      path              = var.health_path
    }
  }

  # Cloud Run refuses (409) a template that reuses an existing revision name
  # with a different configuration, so each revision name ends in a hash of its
  # whole template: any change of image, version or setting deploys under a new
  # name, and an unchanged template keeps its name, so re-applying it is a no-op.
  revision_names = {
    for key, rev in var.model.revisions : key => format(
      "%s-%s-%s", local.service_name, key,
      substr(sha256(jsonencode({ image = rev.image, model_version = rev.model_version, template = local.template })), 0, 8),
    )
  }
  template_revision = local.revision_names[local.newest_key]

  # Revisions with a share of traffic, plus the newest one when it carries the
  # canary tag (a tag URL can point at a revision with 0%). An older revision's
  # name is computed with today's settings: change settings only while a model
  # serves from one revision (see README.md, "Rollouts").
  traffic = [
    for key in sort(distinct(concat(keys(var.model.traffic), var.model.canary_tag == null ? [] : [local.newest_key]))) : {
      revision = local.revision_names[key]
      percent  = lookup(var.model.traffic, key, 0)
      tag      = key == local.newest_key ? var.model.canary_tag : null
    }
  ]
}
