"""The HTTP routes of bulk jobs (jobs.py): submit, read, cancel, list the caller's own."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, g, jsonify, request

from .jobs import JobService


def register_job_routes(app: Flask, jobs: JobService, check_model: Callable[[str], None],
                        charge: Callable[[int], None], base_url: Callable[[], str]) -> None:
    """charge(images) takes a submit's images from the caller's quota (its request was counted
    already), raising TooManyRequests when spent."""

    def status_url(job_id: str) -> str:
        return f"{base_url()}/v1/jobs/{job_id}"

    @app.post("/v1/models/<model>/jobs")
    def create_job(model: str):
        check_model(model)
        job = jobs.submit(model, request.get_json(silent=True), g.get("api_key_id"), charge)
        body = jobs.view(job, with_outputs=False)
        return jsonify({**body, "status_url": status_url(job["id"])}), 202

    @app.get("/v1/jobs/<job_id>")
    def get_job(job_id: str):
        return jsonify(jobs.get(job_id, g.get("api_key_id")))

    @app.post("/v1/jobs/<job_id>:cancel")
    def cancel_job(job_id: str):
        return jsonify({**jobs.cancel(job_id, g.get("api_key_id")), "status_url": status_url(job_id)}), 202

    @app.get("/v1/jobs")
    def list_jobs():
        args = request.args
        return jsonify(jobs.list_page(g.get("api_key_id"), args.get("status"), args.get("page_size"),
                                      args.get("page_token")))
