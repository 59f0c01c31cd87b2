# Names of this model's jobs topic and subscriptions, by the convention the API,
# the model services and the local emulators use too: the contract package's
# naming.json (tests/terraform/test_jobs.py holds the two together). The
# dead-letter topic takes the predictions lane's suffix; its one subscription, a
# pull subscription that keeps what was dead-lettered, is named like the topic.
locals {
  naming                 = jsondecode(file("${path.module}/../../../contract/inference_contract/naming.json"))
  topic_name             = "${local.naming.jobs_topic_prefix}${var.model_name}"
  push_subscription_name = "${local.topic_name}${local.naming.jobs_push_subscription_suffix}"
  dead_letter_topic_name = "${local.topic_name}${local.naming.dead_letter_topic_suffix}"
}
