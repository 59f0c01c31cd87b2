resource "google_firestore_database" "default" {
  project                           = var.project_id
  name                              = "(default)" # the client libraries' default database
  location_id                       = var.location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"
}

# TTL policy: Firestore deletes a prediction once its expire_at has passed.
resource "google_firestore_field" "prediction_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.predictions_collection
  field      = var.ttl_field

  ttl_config {}

  # Single-field indexes are left as they are: the API may query on them, and
  # an empty index_config {} would drop them.
}

# The reconciler's query, `predictions where reconcile_at <= now order by
# reconcile_at limit N`, needs the ascending single-field index on
# reconcile_at. Firestore makes it automatically; declaring it keeps an
# exemption (or a changed automatic-index setting) from dropping it. It is a
# different field from the TTL one above, so the two resources never clash.
resource "google_firestore_field" "reconcile_at" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.predictions_collection
  field      = var.reconcile_field

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION"
    }
  }

  # Field resources of one database are applied one at a time.
  depends_on = [google_firestore_field.prediction_ttl]
}

# Idempotency-Key records (the API's idempotency_keys collection) last 24 hours;
# Firestore's TTL policy deletes them once expire_at has passed.
resource "google_firestore_field" "idempotency_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.idempotency_collection
  field      = var.ttl_field

  ttl_config {}

  depends_on = [google_firestore_field.reconcile_at]
}

# The reconciler's queue-age measurement, `predictions where status == "queued"
# order by created_at limit 1`, needs this composite index.
resource "google_firestore_index" "oldest_queued" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.predictions_collection

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "created_at"
    order      = "ASCENDING"
  }
}

# GET /v1/predictions lists a key's own predictions, newest first:
# `predictions where api_key_id == K [and model == M] [and status == S]
# order by created_at desc, __name__ desc`. Each combination of the optional
# filters needs its composite index (Firestore appends __name__ descending
# itself). The filters are prediction_api.adapters.LISTING_FILTERS;
# tests/terraform/test_listing_indexes.py checks that every combination has one.
locals {
  listing_indexes = {
    owner              = ["api_key_id"]
    owner_model        = ["api_key_id", "model"]
    owner_status       = ["api_key_id", "status"]
    owner_model_status = ["api_key_id", "model", "status"]
  }
  # GET /v1/jobs, as google_firestore_index.job_listing below says.
  job_listing_indexes = {
    owner        = ["api_key_id"]
    owner_status = ["api_key_id", "status"]
  }
}

resource "google_firestore_index" "listing" {
  for_each = local.listing_indexes

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.predictions_collection

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value
      order      = "ASCENDING"
    }
  }

  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# GET /v1/jobs lists a key's own bulk jobs, newest first:
# `jobs where api_key_id == K [and status == S] order by created_at desc,
# __name__ desc`, an index for each combination (local.job_listing_indexes);
# tests/terraform/test_jobs.py checks them against the API's query.
resource "google_firestore_index" "job_listing" {
  for_each = local.job_listing_indexes

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value
      order      = "ASCENDING"
    }
  }

  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# Bulk jobs' documents expire like predictions: the API sets expire_at on the
# job and on each of its shards, and Firestore's TTL policy deletes them.
resource "google_firestore_field" "job_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection
  field      = var.ttl_field

  ttl_config {}

  depends_on = [google_firestore_field.idempotency_ttl]
}

resource "google_firestore_field" "job_shard_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.job_shards_collection
  field      = var.ttl_field

  ttl_config {}

  depends_on = [google_firestore_field.job_ttl]
}

# A shard document holds its JOB_SHARD_SIZE input URIs in one array. Nothing
# queries it, and Firestore would otherwise index every element (an
# array-contains entry each, a write and storage apiece): exempt it, so a shard
# costs the same index writes whatever its size.
resource "google_firestore_field" "job_shard_inputs" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.job_shards_collection
  field      = var.job_shard_inputs_field

  index_config {}

  depends_on = [google_firestore_field.job_shard_ttl]
}
