"""The Pub/Sub message that asks a model service to run one shard of a bulk job.

Published by the API on the model's jobs topic (naming.jobs_topic_name), one per
shard, and again by the reconciler for a stuck shard or an unfinalized job. The
data is {"job_id", "shard", "model"}; the attributes repeat them, so a message can
be routed and logged without parsing its data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .messages import MalformedMessage, envelope_parts


@dataclass(frozen=True)
class ShardMessage:
    job_id: str
    shard: int
    model: str

    def encode(self) -> tuple[bytes, dict[str, str]]:
        """(data, attributes), as published."""
        data = {"job_id": self.job_id, "shard": self.shard, "model": self.model}
        return json.dumps(data).encode(), {"job_id": self.job_id, "shard": str(self.shard),
                                           "model": self.model}


def decode_shard_push(envelope: object) -> tuple[ShardMessage, str | None]:
    """The shard message in a push envelope, and its message id; MalformedMessage otherwise."""
    message, data, attributes = envelope_parts(envelope)
    job_id = data.get("job_id", attributes.get("job_id"))
    model = data.get("model", attributes.get("model"))
    shard = data.get("shard", attributes.get("shard"))
    if isinstance(shard, str) and shard.isdigit():
        shard = int(shard)
    if not (isinstance(job_id, str) and job_id and isinstance(model, str) and model
            and isinstance(shard, int) and not isinstance(shard, bool) and shard >= 0):
        raise MalformedMessage("a shard message needs job_id and model (strings) and shard (an integer >= 0)")
    message_id = message.get("messageId") or message.get("message_id")
    return ShardMessage(job_id, shard, model), message_id if isinstance(message_id, str) else None
