# Names of this model's topics and subscriptions, by the convention the API, the
# model services and the local emulators use too: the contract package's
# naming.json (tests/terraform/test_naming.py holds the two together).
locals {
  naming                        = jsondecode(file("${path.module}/../../../contract/inference_contract/naming.json"))
  topic_name                    = "${local.naming.topic_prefix}${var.model_name}"
  push_subscription_name        = "${local.topic_name}${local.naming.push_subscription_suffix}"
  dead_letter_topic_name        = "${local.topic_name}${local.naming.dead_letter_topic_suffix}"
  dead_letter_subscription_name = "${local.topic_name}${local.naming.dead_letter_subscription_suffix}"
}
