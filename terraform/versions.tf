terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.x: GA `template.gpu_zonal_redundancy_disabled` and `node_selector`
      # on google_cloud_run_v2_service (added in 6.28), and explicit
      # `disable_on_destroy` semantics on google_project_service.
      version = "~> 7.0"
    }
    # Only for google_project_service_identity (modules/platform), which the
    # GA provider does not have; same major version as google.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 7.0"
    }
    # time_sleep: waits for IAM grants and new log-based metrics to propagate.
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13"
    }
  }

  # Partial configuration: pass -backend-config="bucket=..." at init time
  # (cloudbuild.yaml and scripts/rollout.py do), so no project-specific value
  # lives in the code. Provider versions are pinned by .terraform.lock.hcl.
  backend "gcs" {
    prefix = "inference/terraform"
  }
}
