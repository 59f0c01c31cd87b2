"""Traffic operations on the models file: pure functions that return a new models dict."""

from __future__ import annotations

import copy

from .models_file import (
    BUILD_IMAGE,
    DEFAULT_CANARY_TAG,
    REVISION_KEY_RE,
    RolloutError,
    _is_whole,
    newest_revision,
    revision_serial,
    validate_model,
    validate_models,
    with_defaults,
)


def _model(models: dict, name: str) -> dict:
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise RolloutError(f"unknown model {name!r} (known: {known})")
    return models[name]


def _stable_revision(model: dict, newest: str) -> str | None:
    """The revision that keeps the traffic the newest one does not get."""
    others = [key for key in model["revisions"] if key != newest]
    if not others:
        return None
    traffic = model.get("traffic", {})
    return max(others, key=lambda key: (traffic.get(key, 0), model["revisions"][key]["model_version"], key))


def _check_percent(percent) -> None:
    if not _is_whole(percent, 0, 100):
        raise RolloutError(f"percent must be a whole number between 0 and 100, not {percent!r}")


def next_revision_key(model: dict, version: int) -> tuple[str, int]:
    """(v<version>-r<serial>, serial) for a new revision: the serial counts up per model and is never reused.

    The model's last_revision_serial remembers the last one handed out, so a key
    that left the file (promoted away, rolled back) never comes back: a new
    revision always gets a new Cloud Run revision name, never a retired one.
    """
    serial = max(
        [with_defaults(model)["last_revision_serial"]]
        + [revision_serial(key) for key in model.get("revisions", {})]
    ) + 1
    return f"v{version}-r{serial}", serial


def _order(revisions: dict, key: str) -> tuple[int, int, str]:
    return revisions[key]["model_version"], revision_serial(key), key


def canary(
    models: dict,
    name: str,
    version: int,
    image: str,
    percent: int = 10,
    revision: str | None = None,
    tag: str | None = DEFAULT_CANARY_TAG,
) -> dict:
    """Add one new revision (the newest) and send it `percent` of the traffic."""
    models = copy.deepcopy(models)
    model = _model(models, name)
    if not _is_whole(version, 1, 10**12):
        raise RolloutError(f"{name}: version must be a positive whole number, not {version!r}")
    _check_percent(percent)
    if not isinstance(image, str) or "/" not in image:
        raise RolloutError(
            f"{name}: image must be a full image reference such as REGION-docker.pkg.dev/P/R/I@sha256:..."
        )
    revisions = model.setdefault("revisions", {})
    traffic = model.setdefault("traffic", {})
    if revision is None:
        key, serial = next_revision_key(model, version)
        model["last_revision_serial"] = serial
    else:
        key = revision
    if not REVISION_KEY_RE.match(key):
        raise RolloutError(f"{name}: revision key {key!r} must be 1-20 lowercase letters, digits or hyphens")
    if key in revisions:
        raise RolloutError(f"{name}: revision {key} already exists; pass --revision NAME for a new one")
    serving = sorted(k for k, p in traffic.items() if p > 0)
    if len(serving) > 1:
        split = ", ".join(f"{k} {traffic[k]}%" for k in serving)
        raise RolloutError(f"{name}: a rollout is in progress ({split}); promote or roll back first")
    if revisions:
        current = newest_revision(revisions)
        if (version, revision_serial(key), key) <= _order(revisions, current):
            raise RolloutError(
                f"{name}: new revision {key} (version {version}) must be newer than "
                f"{current} (version {revisions[current]['model_version']})"
            )
        if (
            revision is None
            and serving
            and revisions[serving[0]] == {"model_version": version, "image": image}
        ):
            raise RolloutError(
                f"{name}: {serving[0]} already serves version {version} with that image; nothing to canary"
            )
    if not serving and percent != 100:
        raise RolloutError(
            f"{name}: no serving revision to keep {100 - percent}% of the traffic; use percent 100"
        )

    stable = serving[0] if serving else None
    # Revisions without traffic are dropped: they are older than the new one,
    # so the template no longer refers to them.
    model["revisions"] = {k: v for k, v in revisions.items() if k == stable}
    model["revisions"][key] = {"model_version": version, "image": image}
    model["traffic"] = {key: percent}
    if stable is not None and percent < 100:
        model["traffic"][stable] = 100 - percent
    if tag is None:
        model.pop("canary_tag", None)
    else:
        model["canary_tag"] = tag
    validate_model(name, model)
    return models


def redeploy(models: dict, name: str) -> dict:
    """The newest revision again, same version and image, under a new key and so a new Cloud Run name.

    For a revision whose creation failed (the service left tainted, say) and
    that should be retried unchanged: its template name is taken, so only a new
    key makes Cloud Run create a revision. The new key takes the old one's
    traffic and tag; the old key leaves the file.
    """
    models = copy.deepcopy(models)
    model = _model(models, name)
    revisions = model.get("revisions", {})
    old = newest_revision(revisions)
    key, serial = next_revision_key(model, revisions[old]["model_version"])
    model["last_revision_serial"] = serial
    model["revisions"] = {**{k: v for k, v in revisions.items() if k != old}, key: revisions[old]}
    traffic = model.get("traffic", {})
    model["traffic"] = {(key if k == old else k): p for k, p in traffic.items()}
    validate_model(name, model)
    return models


def set_split(models: dict, name: str, percent: int) -> dict:
    """Give the newest revision `percent`, the previous one the rest."""
    models = copy.deepcopy(models)
    model = _model(models, name)
    _check_percent(percent)
    newest = newest_revision(model.get("revisions", {}))
    stable = _stable_revision(model, newest)
    if stable is None and percent != 100:
        raise RolloutError(
            f"{name}: {newest} is the only revision; nothing can take the other {100 - percent}%"
        )
    model["traffic"] = {newest: percent}
    if stable is not None and percent < 100:
        model["traffic"][stable] = 100 - percent
    validate_model(name, model)
    return models


def promote(models: dict, name: str) -> dict:
    """Send all traffic to the newest revision and forget the older ones."""
    models = copy.deepcopy(models)
    model = _model(models, name)
    newest = newest_revision(model.get("revisions", {}))
    model["revisions"] = {newest: model["revisions"][newest]}
    model["traffic"] = {newest: 100}
    model.pop("canary_tag", None)
    validate_model(name, model)
    return models


def rollback(models: dict, name: str) -> dict:
    """Send all traffic back to the previous revision and drop the canary.

    Dropping it points the template back at the previous revision's image and
    version; with unchanged settings that is the previous revision's own
    template and name (the name ends in a hash of the template), so Cloud Run
    keeps serving that revision and nothing new is deployed. It works whether
    or not the canary ever became ready.
    """
    models = copy.deepcopy(models)
    model = _model(models, name)
    newest = newest_revision(model.get("revisions", {}))
    stable = _stable_revision(model, newest)
    if stable is None:
        raise RolloutError(f"{name}: {newest} is the only revision; nothing to roll back to")
    model["revisions"] = {stable: model["revisions"][stable]}
    model["traffic"] = {stable: 100}
    model.pop("canary_tag", None)
    validate_model(name, model)
    return models


def pin_images(models: dict, image: str, gpu_image: str | None = None) -> tuple[dict, list[str]]:
    """Replace BUILD_IMAGE placeholders with `image` (`gpu_image` on gpu models, if given).

    Returns the new models and the model/revision entries that changed.
    """
    for candidate in (image, gpu_image or image):
        if not isinstance(candidate, str) or "/" not in candidate:
            raise RolloutError(
                "images must be full references such as REGION-docker.pkg.dev/P/R/I@sha256:..."
            )
    models = copy.deepcopy(models)
    pinned = []
    for name, model in sorted(models.items()):
        gpu = with_defaults(model)["accelerator"] == "gpu"
        for key, rev in sorted(model.get("revisions", {}).items()):
            if rev.get("image") == BUILD_IMAGE:
                rev["image"] = gpu_image if gpu and gpu_image else image
                pinned.append(f"{name}/{key}")
    validate_models(models)
    return models, pinned


def describe(name: str, model: dict) -> str:
    """One-line summary of a model's split, e.g. `resnet50: v2 90%, v3 10% (tag canary -> v3)`."""
    traffic = model.get("traffic", {})
    split = ", ".join(f"{key} {traffic[key]}%" for key in sorted(traffic, key=lambda k: -traffic[k]))
    summary = f"{name}: {split}"
    tag = model.get("canary_tag")
    if tag:
        summary += f" (tag {tag} -> {newest_revision(model['revisions'])})"
    return summary

