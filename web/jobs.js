"use strict";

// The "Your jobs" panel: the caller's bulk jobs (GET /v1/jobs, newest first) with
// their counts as a progress bar, polled while any is unfinished, and a Cancel
// button on those that are. Jobs are started with `inference jobs submit` or the API.
(() => {
  const API_BASE = String((window.INFERENCE_CONFIG || {}).apiBaseUrl || "").replace(/\/+$/, "");
  const ACTIVE_POLL_MS = 2000; // while a job is queued or running
  const IDLE_POLL_MS = 15000; // while every job shown is final, to notice new ones
  const LIST_SIZE = 20;
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);

  const $ = (id) => document.getElementById(id);
  const ui = {
    apiKey: $("api-key"), list: $("jobs"), empty: $("jobs-empty"), error: $("jobs-error"),
    refresh: $("jobs-refresh"),
  };
  let timer = null;

  function authHeaders() {
    const key = ui.apiKey.value.trim();
    return key ? { "X-API-Key": key } : {};
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function counts(job) {
    const c = job.counts || {};
    const total = Number(c.total) || 0;
    const succeeded = Number(c.succeeded) || 0;
    const failed = Number(c.failed) || 0;
    return { total, succeeded, failed, done: succeeded + failed, pending: Number(c.pending) || 0 };
  }

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = !message;
  }

  async function cancel(job, button) {
    button.disabled = true;
    try {
      const response = await fetch(`${API_BASE}/v1/jobs/${encodeURIComponent(job.id)}:cancel`, {
        method: "POST", headers: authHeaders(),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        showError((body && body.error && body.error.message) || `Cancel answered HTTP ${response.status}.`);
      }
    } catch {
      showError(`Could not reach the API at ${API_BASE}.`);
    }
    schedule(0);
  }

  function renderJob(job) {
    const c = counts(job);
    const row = element("li", "job");
    row.dataset.id = job.id;
    row.dataset.status = job.status;
    const head = element("p", "job-head");
    head.append(element("span", "job-model", job.model || ""), " ",
      element("span", `job-status state-${job.status}`, job.status), " ",
      element("code", "job-id", job.id));
    const bar = element("progress", "job-progress");
    bar.max = Math.max(1, c.total);
    bar.value = c.done;
    bar.setAttribute("aria-label", `Job ${job.id}: ${c.done} of ${c.total} images done`);
    const figures = element("p", "job-counts",
      `${c.done} / ${c.total} done: ${c.succeeded} succeeded, ${c.failed} failed, ${c.pending} pending`);
    const where = element("p", "job-output hint", job.output ? `Results: ${job.output}` : "");
    row.append(head, bar, figures, where);
    if (!FINAL.has(job.status)) {
      const button = element("button", "secondary job-cancel", "Cancel");
      button.type = "button";
      button.addEventListener("click", () => cancel(job, button));
      row.append(button);
    }
    return row;
  }

  async function refresh() {
    if (!API_BASE) return;
    let active = false;
    try {
      const response = await fetch(`${API_BASE}/v1/jobs?page_size=${LIST_SIZE}`,
        { cache: "no-store", headers: authHeaders() });
      const body = await response.json().catch(() => null);
      if (!response.ok) {
        showError((body && body.error && body.error.message) || `Listing jobs answered HTTP ${response.status}.`);
      } else {
        showError("");
        const jobs = (body && body.jobs) || [];
        ui.list.replaceChildren(...jobs.map(renderJob));
        ui.empty.hidden = jobs.length > 0;
        active = jobs.some((job) => !FINAL.has(job.status));
      }
    } catch {
      showError(`Could not reach the API at ${API_BASE} to list jobs.`);
    }
    schedule(active ? ACTIVE_POLL_MS : IDLE_POLL_MS);
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay);
  }

  ui.refresh.addEventListener("click", () => schedule(0));
  ui.apiKey.addEventListener("change", () => schedule(0));
  schedule(0);
})();
