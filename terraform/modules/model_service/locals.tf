locals {
  service_name = "model-${var.model_name}"
  is_gpu       = var.model.accelerator == "gpu"

  # The newest revision (highest model_version, ties broken by the greater key)
  # is the one the template deploys. Older entries already exist in Cloud Run,
  # which keeps past revisions, so traffic can still be routed to them.
  revision_order = sort([for key, rev in var.model.revisions : format("%012d/%s", rev.model_version, key)])
  newest_key     = split("/", local.revision_order[length(local.revision_order) - 1])[1]
  newest         = var.model.revisions[local.newest_key]

  # GPU settings exist only for accelerator = "gpu": one NVIDIA L4, which needs
  # at least 4 CPUs and 16 GiB of memory.
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
  }
  env = merge(local.shared_env, { MODEL_VERSION = tostring(local.newest.model_version) })

  # Everything the template sets. Cloud Run refuses (409) a template that reuses
  # an existing revision name with a different configuration, so each revision
  # name ends in a hash of its template: any change of image, version or
  # setting (model-level or module-wide, such as the probes) deploys under a new
  # name, and an unchanged template keeps its name, so re-applying it is a no-op.
  template_settings = {
    limits                        = local.limits
    accelerator                   = local.accelerator
    gpu_zonal_redundancy_disabled = local.gpu_zonal_redundancy_disabled
    cpu_idle                      = !local.is_gpu
    concurrency                   = var.model.concurrency
    min_instances                 = var.model.min_instances
    max_instances                 = var.model.max_instances
    timeout_seconds               = var.model.ack_deadline_seconds
    startup_timeout_seconds       = var.startup_timeout_seconds
    container_port                = var.container_port
    health_path                   = var.health_path
    shared_env                    = local.shared_env
    callback_signing_secret       = var.callback_signing_secret
  }
  revision_names = {
    for key, rev in var.model.revisions : key => format(
      "%s-%s-%s", local.service_name, key,
      substr(sha256(jsonencode({ image = rev.image, model_version = rev.model_version, settings = local.template_settings })), 0, 8),
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
