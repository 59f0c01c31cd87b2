locals {
  # config.js is generated below; a local copy in the folder is for local runs.
  site_files = setsubtract(fileset(var.source_dir, "**"), ["config.js"])
}

resource "google_storage_bucket" "website" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access); usage-log buckets are a legacy mechanism.
  #checkov:skip=CKV_GCP_78:The site is rebuilt from the repository on every deploy; versioning would keep nothing of value.
  #checkov:skip=CKV_GCP_114:A static site served from Cloud Storage must be publicly readable (see var.public); nothing else lives in this bucket.
  name                        = "${var.project_id}-website"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = var.public ? "inherited" : "enforced"
  force_destroy               = true

  website {
    main_page_suffix = "index.html"
    not_found_page   = "index.html"
  }
}

resource "google_storage_bucket_iam_member" "public_read" {
  #checkov:skip=CKV_GCP_28:This bucket holds only the public static website; public read is its purpose.
  count = var.public ? 1 : 0

  bucket = google_storage_bucket.website.name
  role   = "roles/storage.objectViewer"
  member = "allUsers" # a static website; see var.public
}

resource "google_storage_bucket_object" "site" {
  for_each = local.site_files

  bucket        = google_storage_bucket.website.name
  name          = each.value
  source        = "${var.source_dir}/${each.value}"
  content_type  = lookup(var.content_types, lower(element(split(".", each.value), length(split(".", each.value)) - 1)), "application/octet-stream")
  cache_control = "public, max-age=300"
}

# The web client reads its API location from this file.
resource "google_storage_bucket_object" "config" {
  bucket        = google_storage_bucket.website.name
  name          = "config.js"
  content       = "window.INFERENCE_CONFIG = ${jsonencode({ apiBaseUrl = var.api_url })};\n"
  content_type  = "application/javascript"
  cache_control = "no-cache, max-age=0"
}
