"""Terraform names each model's topics and subscriptions as the Python contract does.

terraform/modules/model_routing/naming.tf reads contract/inference_contract/naming.json;
here the real terraform binary evaluates that file's locals (no provider needed) in a
scratch copy laid out like the repository, and the results are compared with
inference_contract.naming, which the API, the model services and the emulators use.
"""

from __future__ import annotations

import pytest
from inference_contract import naming

from tests.terraform.conftest import MODULES_DIR, evaluate_naming

MODELS = ("resnet50", "efficientnet-lite0", "cat")

_OUTPUTS = """
variable "model_name" {
  type = string
}

output "names" {
  value = {
    topic                    = local.topic_name
    push_subscription        = local.push_subscription_name
    dead_letter_topic        = local.dead_letter_topic_name
    dead_letter_subscription = local.dead_letter_subscription_name
  }
}
"""


@pytest.fixture(scope="module")
def routing_naming(terraform_bin, tmp_path_factory):
    """model name -> the names naming.tf computes for it."""
    return evaluate_naming(terraform_bin, tmp_path_factory.mktemp("tf-naming"), "model_routing", _OUTPUTS,
                           MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_terraform_and_the_contract_name_a_models_resources_alike(routing_naming, model):
    assert routing_naming[model] == {
        "topic": naming.topic_name(model),
        "push_subscription": naming.push_subscription_name(model),
        "dead_letter_topic": naming.dead_letter_topic_name(model),
        "dead_letter_subscription": naming.dead_letter_subscription_name(model),
    }
    assert routing_naming[model]["topic"] == f"predictions-{model}"


def test_the_routing_resources_take_their_names_from_naming_tf():
    main = (MODULES_DIR / "model_routing" / "main.tf").read_text()
    for local in ("topic_name", "push_subscription_name", "dead_letter_topic_name",
                  "dead_letter_subscription_name"):
        assert f"name    = local.{local}\n" in main, local
    assert "predictions-" not in main
