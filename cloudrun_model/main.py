"""gunicorn entry point of the model service (`gunicorn --config gunicorn.conf.py main:app`)."""

from model_service.wiring import build_app

app = build_app()
