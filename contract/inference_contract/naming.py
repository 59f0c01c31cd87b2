"""Names of each model's Pub/Sub resources.

The convention is data (naming.json) so that Terraform reads the same file
(terraform/modules/model_routing) as the API, the emulators' provisioning and
the tests do here.
"""

from __future__ import annotations

import json
from pathlib import Path

_NAMING = json.loads((Path(__file__).with_name("naming.json")).read_text())
TOPIC_PREFIX: str = _NAMING["topic_prefix"]


def topic_name(model: str) -> str:
    """The topic a model's prediction requests are published to."""
    return f"{TOPIC_PREFIX}{model}"


def push_subscription_name(model: str) -> str:
    return f"{topic_name(model)}{_NAMING['push_subscription_suffix']}"


def dead_letter_topic_name(model: str) -> str:
    return f"{topic_name(model)}{_NAMING['dead_letter_topic_suffix']}"


def dead_letter_subscription_name(model: str) -> str:
    return f"{topic_name(model)}{_NAMING['dead_letter_subscription_suffix']}"


def jobs_topic_name(model: str) -> str:
    """The topic a model's bulk job shards are published to: a lane of its own (README, Bulk jobs)."""
    return f"{_NAMING['jobs_topic_prefix']}{model}"


def jobs_push_subscription_name(model: str) -> str:
    return f"{jobs_topic_name(model)}{_NAMING['jobs_push_subscription_suffix']}"
