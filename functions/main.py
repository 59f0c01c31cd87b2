"""Cloud Functions entry points. Routing and logic live in prediction_api."""

from __future__ import annotations

import functools

import flask
import functions_framework
from prediction_api.app import framework_error
from prediction_api.bodies import discard_rest
from prediction_api.wiring import build_api_app, build_dead_letter_app, build_reconcile_app
from werkzeug.exceptions import HTTPException

# The framework routes before our apps do; its own 404s answer in our JSON too.
functions_framework.errorhandler(HTTPException)(framework_error)

# Built on first use, once per instance, so a cold start pays for one app only.
_api_app = functools.cache(build_api_app)
_dead_letter_app = functools.cache(build_dead_letter_app)
_reconcile_app = functools.cache(build_reconcile_app)


def _dispatch(app: flask.Flask, request: flask.Request) -> flask.Response:
    """Run the whole WSGI app, middleware included (ProxyFix), on functions-framework's request.

    Calling app.full_dispatch_request() would skip app.wsgi_app, and with it the
    ProxyFix that makes status_url carry the public scheme and host. The body is
    read through functions-framework's own (length-limited) stream, so that its
    after-request read finds it consumed rather than short; what the app left unread
    (a body it refused at its limit) is read and dropped a chunk at a time, since that
    after-request read would hold all of it in memory at once.
    """
    environ = {**request.environ, "wsgi.input": request.stream, "wsgi.input_terminated": True}
    response = flask.Response.from_app(app.wsgi_app, environ, buffered=True)
    discard_rest(request.stream)
    return response


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    """The public HTTP API: uploads, prediction status, model list."""
    return _dispatch(_api_app(), request)


@functions_framework.http
def dead_letter(request: flask.Request) -> flask.Response:
    """Pub/Sub push target of the dead-letter subscriptions: marks predictions failed."""
    return _dispatch(_dead_letter_app(), request)


@functions_framework.http
def reconcile(request: flask.Request) -> flask.Response:
    """Called every minute by Cloud Scheduler: publishes overdue predictions again, fails stale ones."""
    return _dispatch(_reconcile_app(), request)
