"""gunicorn entry point of the model service (`gunicorn --config gunicorn.conf.py main:app`)."""

import os

# TensorFlow imports Keras as it is imported, only to register Keras's optimizers for
# SavedModels that hold one (tensorflow/__init__.py); a model version holds a serving
# signature and its variables, and the service never uses Keras. Pointed at tf_keras,
# which is not installed, TensorFlow skips that import: about a third of its import's
# CPU time (1.9 of 4.7 s here), on every start of the service.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from model_service.wiring import build_app  # noqa: E402

app = build_app()
