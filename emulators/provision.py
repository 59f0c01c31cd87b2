"""Creates the buckets, topics and subscriptions of the local stack, as Terraform does in the cloud."""

from __future__ import annotations

from dataclasses import dataclass

from google.api_core import exceptions as gexc
from inference_contract.naming import (
    dead_letter_subscription_name,
    dead_letter_topic_name,
    jobs_push_subscription_name,
    jobs_topic_name,
    push_subscription_name,
    topic_name,
)


@dataclass(frozen=True)
class Route:
    """Where one model's messages are pushed, and where its dead letters go."""

    model: str
    push_endpoint: str
    dead_letter_endpoint: str
    # The model service's bulk lane (POST /jobs): its own topic and push subscription.
    jobs_endpoint: str | None = None


@dataclass(frozen=True)
class DeliveryPolicy:
    ack_deadline_seconds: int = 60
    max_delivery_attempts: int = 5
    minimum_backoff_seconds: int = 1
    maximum_backoff_seconds: int = 10


def create_bucket(name: str, project: str) -> None:
    from google.cloud import storage

    try:
        storage.Client(project=project).create_bucket(name)
    except gexc.Conflict:
        pass


def create_routes(project: str, routes: list[Route], policy: DeliveryPolicy = DeliveryPolicy()) -> None:
    from google.cloud import pubsub_v1
    from google.protobuf import duration_pb2

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()

    def ensure(create, **request) -> None:
        try:
            create(request=request)
        except gexc.AlreadyExists:
            pass

    for route in routes:
        topic = publisher.topic_path(project, topic_name(route.model))
        dead_letter_topic = publisher.topic_path(project, dead_letter_topic_name(route.model))
        ensure(publisher.create_topic, name=topic)
        ensure(publisher.create_topic, name=dead_letter_topic)
        ensure(subscriber.create_subscription,
               name=subscriber.subscription_path(project, push_subscription_name(route.model)),
               topic=topic,
               push_config={"push_endpoint": route.push_endpoint},
               ack_deadline_seconds=policy.ack_deadline_seconds,
               dead_letter_policy={"dead_letter_topic": dead_letter_topic,
                                   "max_delivery_attempts": policy.max_delivery_attempts},
               retry_policy={
                   "minimum_backoff": duration_pb2.Duration(seconds=policy.minimum_backoff_seconds),
                   "maximum_backoff": duration_pb2.Duration(seconds=policy.maximum_backoff_seconds)})
        if route.jobs_endpoint:
            # No dead-letter topic: a shard whose pushes failed is published again by the reconciler.
            jobs_topic = publisher.topic_path(project, jobs_topic_name(route.model))
            ensure(publisher.create_topic, name=jobs_topic)
            ensure(subscriber.create_subscription,
                   name=subscriber.subscription_path(project, jobs_push_subscription_name(route.model)),
                   topic=jobs_topic, push_config={"push_endpoint": route.jobs_endpoint},
                   ack_deadline_seconds=policy.ack_deadline_seconds,
                   retry_policy={
                       "minimum_backoff": duration_pb2.Duration(seconds=policy.minimum_backoff_seconds),
                       "maximum_backoff": duration_pb2.Duration(seconds=policy.maximum_backoff_seconds)})
        ensure(subscriber.create_subscription,
               name=subscriber.subscription_path(project, dead_letter_subscription_name(route.model)),
               topic=dead_letter_topic,
               push_config={"push_endpoint": route.dead_letter_endpoint},
               ack_deadline_seconds=30,
               retry_policy={"minimum_backoff": duration_pb2.Duration(seconds=1),
                             "maximum_backoff": duration_pb2.Duration(seconds=30)})
