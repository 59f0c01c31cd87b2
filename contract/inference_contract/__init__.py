"""The contract between the API (functions/) and the model services (cloudrun_model/).

One copy of what both deploy units must agree on; each unit ships it as a
top-level package next to its own code (scripts/package_units.py copies it in):

- predictions: the prediction document's statuses and the fields a client sees;
- lifecycle: the first document and every transition of it, as pure functions;
- messages: the Pub/Sub message that asks a model service for a prediction;
- naming: topic and subscription names (naming.json, which Terraform reads too);
- logs: the JSON log line format;
- callback_targets: which callback destinations may be contacted;
- pinned_http: HTTP to such a destination, its checked address pinned (callbacks, image URLs);
- settings: how environment variables are parsed.
"""
