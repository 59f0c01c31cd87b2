#!/usr/bin/env bash
# One-time preparation of an empty Google Cloud project, run once by a project
# Owner with gcloud, before the first `gcloud builds submit` (terraform/README.md):
#
#   scripts/bootstrap.sh PROJECT_ID REGION
#
# REGION is the deployment's one region (Cloud Run, functions, registry,
# buckets): it is written to terraform.tfvars.json, and every Cloud Build run
# must be submitted with the same --region (the build checks).
#
# It creates only what Cloud Build needs before Terraform can run:
#   - the APIs Cloud Build and Terraform's first calls use;
#   - the Terraform state bucket gs://PROJECT_ID-tfstate (versioned);
#   - the deployer service account the builds run as, with the roles below;
#   - the callback signing secret (Secret Manager `callback-signing-secret`, a
#     Standard Webhooks whsec_ key), made here so its value never enters Terraform
#     state; Terraform grants the model services access to it;
#   - the deployment's configuration in gs://PROJECT_ID-tfstate/config/:
#     terraform.tfvars.json (project_id, region) and models.auto.tfvars.json
#     (terraform/models.auto.tfvars.json.example), unless they exist already.
# IAM grants take a while to propagate: when it granted anything new, it waits
# IAM_PROPAGATION_SECONDS (default 120) before saying the project is ready.
# Everything else (the other APIs, registry, buckets, services) is Terraform's.
# Running it again changes nothing that exists.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 PROJECT_ID REGION   (e.g. $0 my-inference-project europe-west4)" >&2
  exit 2
fi
project="$1"
region="$2"
if ! [[ "$region" =~ ^[a-z]+-[a-z]+[0-9]+$ ]]; then
  echo "$0: '$region' is not a Google Cloud region such as europe-west4" >&2
  exit 2
fi
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
state_bucket="gs://${project}-tfstate"
deployer_id="inference-deployer"
deployer="${deployer_id}@${project}.iam.gserviceaccount.com"

# What the deployer creates, and the narrowest predefined role for each. Plain
# roles/editor is not enough: it cannot set IAM policies on buckets, topics,
# subscriptions, services or service accounts.
DEPLOYER_ROLES=(
  roles/serviceusage.serviceUsageAdmin   # enable APIs, create the Pub/Sub service identity
  roles/artifactregistry.admin           # the image repository (cleanup policies) and pushes
  roles/storage.admin                    # buckets, their IAM, objects, the state and config
  roles/datastore.owner                  # the Firestore database, TTL and index fields
  roles/iam.serviceAccountAdmin          # runtime service accounts and IAM on them
  roles/iam.serviceAccountUser           # act as those accounts (Cloud Run, functions, Scheduler)
  roles/resourcemanager.projectIamAdmin  # project-level grants (datastore.user, build roles)
  roles/run.admin                        # model services and run.invoker on them and the functions
  roles/cloudfunctions.admin             # the api, dead_letter and reconcile functions
  roles/pubsub.admin                     # topics, subscriptions and their IAM
  roles/cloudscheduler.admin             # the reconciler's schedule
  roles/secretmanager.admin              # IAM on the callback signing secret
  roles/logging.logWriter                # build logs (CLOUD_LOGGING_ONLY)
  roles/logging.configWriter             # log-based metrics (modules/monitoring)
  roles/monitoring.editor                # the dashboard and alert policies (modules/monitoring)
)

gcloud services enable --project "$project" \
  cloudbuild.googleapis.com cloudresourcemanager.googleapis.com iam.googleapis.com \
  serviceusage.googleapis.com storage.googleapis.com

if ! gcloud storage buckets describe "$state_bucket" --project "$project" > /dev/null 2>&1; then
  gcloud storage buckets create "$state_bucket" --project "$project" --location "$region" \
    --uniform-bucket-level-access --public-access-prevention
fi
gcloud storage buckets update "$state_bucket" --versioning

granted_anything=false
if ! gcloud iam service-accounts describe "$deployer" --project "$project" > /dev/null 2>&1; then
  gcloud iam service-accounts create "$deployer_id" --project "$project" \
    --display-name "Inference deployer" --description "Cloud Build identity of cloudbuild.yaml and ci/rollout.cloudbuild.yaml"
  granted_anything=true
fi
held="$(gcloud projects get-iam-policy "$project" --flatten="bindings[].members" \
  --filter="bindings.members:serviceAccount:${deployer}" --format="value(bindings.role)")"
for role in "${DEPLOYER_ROLES[@]}"; do
  if grep -qxF "$role" <<< "$held"; then
    continue
  fi
  gcloud projects add-iam-policy-binding "$project" --member "serviceAccount:${deployer}" \
    --role "$role" --condition None --quiet > /dev/null
  echo "granted $role to $deployer"
  granted_anything=true
done

# The callback signing secret: 32 random bytes, base64, as Standard Webhooks' whsec_ form.
signing_secret="callback-signing-secret"
gcloud services enable --project "$project" secretmanager.googleapis.com
if ! gcloud secrets describe "$signing_secret" --project "$project" > /dev/null 2>&1; then
  printf 'whsec_%s' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" \
    | gcloud secrets create "$signing_secret" --project "$project" --replication-policy=automatic --data-file=-
  echo "created the callback signing secret $signing_secret"
fi

config="${state_bucket}/config"
if ! gcloud storage ls "${config}/terraform.tfvars.json" > /dev/null 2>&1; then
  settings="$(mktemp)"
  printf '{\n  "project_id": "%s",\n  "region": "%s"\n}\n' "$project" "$region" > "$settings"
  gcloud storage cp "$settings" "${config}/terraform.tfvars.json"
  rm -f "$settings"
fi
if ! gcloud storage ls "${config}/models.auto.tfvars.json" > /dev/null 2>&1; then
  gcloud storage cp "${repo_root}/terraform/models.auto.tfvars.json.example" "${config}/models.auto.tfvars.json"
fi
# A build that starts before the grants have propagated fails on its first
# call; the build runs right after this script in terraform/README.md.
if [ "$granted_anything" = true ]; then
  wait_seconds="${IAM_PROPAGATION_SECONDS:-120}"
  echo "waiting ${wait_seconds} s for the new IAM grants to propagate"
  sleep "$wait_seconds"
fi

cat << EOF
Project ${project} is ready for its first build:
  gcloud builds submit --project ${project} --config cloudbuild.yaml --region ${region} \\
    --service-account projects/${project}/serviceAccounts/${deployer}
EOF
