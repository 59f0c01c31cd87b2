locals {
  service_name = "model-${var.model_name}"
  is_gpu       = var.model.accelerator == "gpu"

  # The newest revision (highest model_version, ties broken by the greater key)
  # is the one the template deploys. Older entries already exist in Cloud Run,
  # which keeps past revisions, so traffic can still be routed to them.
  revision_order    = sort([for key, rev in var.model.revisions : format("%012d/%s", rev.model_version, key)])
  newest_key        = split("/", local.revision_order[length(local.revision_order) - 1])[1]
  newest            = var.model.revisions[local.newest_key]
  template_revision = "${local.service_name}-${local.newest_key}"

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

  env = {
    MODEL_NAME           = var.model_name
    MODEL_VERSION        = tostring(local.newest.model_version)
    MODEL_REPOSITORY     = var.model_repository
    GOOGLE_CLOUD_PROJECT = var.project_id
    # One gunicorn worker; its threads are the request concurrency.
    GUNICORN_THREADS = tostring(var.model.concurrency)
  }

  # Revisions with a share of traffic, plus the newest one when it carries the
  # canary tag (a tag URL can point at a revision with 0%).
  traffic = [
    for key in sort(distinct(concat(keys(var.model.traffic), var.model.canary_tag == null ? [] : [local.newest_key]))) : {
      revision = "${local.service_name}-${key}"
      percent  = lookup(var.model.traffic, key, 0)
      tag      = key == local.newest_key ? var.model.canary_tag : null
    }
  ]
}
