"use strict";

// The page: pick a model, add images, upload each as its own request, follow each
// prediction through the status endpoint's long-poll, show the result.
(() => {
  const API_BASE = String((window.INFERENCE_CONFIG || {}).apiBaseUrl || "").replace(/\/+$/, "");
  const WAIT_SECONDS = 25; // the API holds a status request up to 30 s
  const SHARED_WAIT_SECONDS = 5; // shorter holds while other images wait for a poll slot
  const MIN_POLL_INTERVAL_MS = 1000; // floor between polls, should a hold end early
  const MAX_BACKOFF_MS = 30000;
  // Browsers open at most 6 connections per host; leave two for uploads.
  const MAX_UPLOADS = 2;
  const MAX_POLLS = 4;
  const HISTORY_KEY = "inference.history";
  const HISTORY_SIZE = 20;
  const MODEL_KEY = "inference.model";
  const API_KEY = "inference.apiKey"; // sessionStorage only: never localStorage
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  const STATE_NAMES = {
    ready: "Ready", uploading: "Uploading", queued: "Queued", running: "Running",
    succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled",
  };
  const KIND_GROUPS = [
    ["classifier", "Classifiers: top-5 labels"],
    ["detector", "Detectors: yes or no"],
    ["other", "Not loaded yet"],
  ];

  const $ = (id) => document.getElementById(id);
  const ui = {
    configError: $("config-error"), form: $("upload-form"), model: $("model"),
    modelInfo: $("model-info"), reloadModels: $("reload-models"), dropzone: $("dropzone"),
    fileInput: $("file-input"), uploadButton: $("upload-button"), clearButton: $("clear-button"),
    pendingSummary: $("pending-summary"), cards: $("cards"), imagesEmpty: $("images-empty"),
    history: $("history"), historyEmpty: $("history-empty"), announcer: $("announcer"),
    template: $("card-template"), apiKey: $("api-key"), imageUrl: $("image-url"), addUrl: $("add-url"),
    imageUrlInfo: $("image-url-info"),
  };
  const IMAGE_URL_HINT = ui.imageUrlInfo.textContent;
  // What the API takes in its image_url field: it fetches these, the page only names them.
  const IMAGE_URL = /^(https?|gs):\/\/\S+$/i;

  const models = new Map(); // name -> entry of GET /v1/models
  const items = []; // one per image on the page, in display order
  let uploadQueue = [];
  let activeUploads = 0;
  let activePolls = 0;
  const pollWaiters = [];

  // ---- helpers --------------------------------------------------------------

  // The headers every API request carries: the key typed into the page, if any.
  function authHeaders() {
    const key = ui.apiKey.value.trim();
    return key ? { "X-API-Key": key } : {};
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const percent = (score) => (typeof score === "number" ? `${(score * 100).toFixed(1)}%` : "?");
  const decimal = (score) => (typeof score === "number" ? score.toFixed(2) : "?");

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  // The API's own words when it sent them; a plain description of the status otherwise.
  function apiErrorMessage(status, body) {
    const error = body && body.error;
    if (error && error.message) return error.message;
    if (status === 413) return "The image is larger than the API accepts.";
    if (status === 401) return "The API needs a valid API key: enter it above.";
    if (status === 429) return "Too many requests for this API key; wait a moment.";
    return `The API answered HTTP ${status}.`;
  }

  function unreachableMessage() {
    return `Could not reach the API at ${API_BASE}. It may be down, or it may not allow this page's origin.`;
  }

  function announce(text) {
    // Cleared first so that the same words twice are still read out.
    ui.announcer.textContent = "";
    requestAnimationFrame(() => { ui.announcer.textContent = text; });
  }

  // Only web URLs become links: a history entry is read back from storage.
  function webUrl(url) {
    try {
      const parsed = new URL(url);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  function statusPath(url) {
    try {
      return new URL(url).pathname;
    } catch {
      return url;
    }
  }

  // ---- models ---------------------------------------------------------------

  function latestVersion(model) {
    const versions = model.versions || [];
    return versions.length ? versions[versions.length - 1] : null;
  }

  function kindOf(model) {
    const kind = model.kind === "classifier" || model.kind === "detector" ? model.kind : null;
    const version = latestVersion(model);
    return kind || (version && version.kind) || "other";
  }

  function optionText(model) {
    const version = latestVersion(model);
    const untrained = version && version.pretrained === false ? " (untrained)" : "";
    if (kindOf(model) === "detector" && version && version.label) {
      return `${model.name}: is it a ${version.label}?${untrained}`;
    }
    return `${model.name}${untrained}`;
  }

  function describeModel(name) {
    const model = models.get(name);
    if (!model) return "";
    const version = latestVersion(model);
    const parts = [];
    const kind = kindOf(model);
    if (kind === "classifier") parts.push("Classifier: shows the five most likely labels with their scores.");
    else if (kind === "detector") parts.push(`Detector: answers yes or no${version && version.label ? `: is there a ${version.label}?` : "."}`);
    else parts.push("Its service has not reported yet; results will show whatever it returns.");
    if (version) parts.push(`Version ${version.version}. Weights: ${version.weights}.`);
    if (version && version.pretrained === false) parts.push("Untrained weights: its answers are meaningless.");
    return parts.join(" ");
  }

  async function loadModels() {
    const previous = ui.model.value || stored(MODEL_KEY) || "";
    ui.model.disabled = true;
    ui.reloadModels.disabled = true;
    ui.model.replaceChildren(new Option("Loading models…", ""));
    ui.modelInfo.textContent = "";
    try {
      let response;
      try {
        response = await fetch(`${API_BASE}/v1/models`, { cache: "no-store", headers: authHeaders() });
      } catch {
        throw new Error(unreachableMessage());
      }
      const body = parseJson(await response.text());
      if (!response.ok) throw new Error(apiErrorMessage(response.status, body));
      models.clear();
      for (const model of (body && body.models) || []) models.set(model.name, model);
      renderModelOptions(previous);
    } catch (error) {
      ui.model.replaceChildren(new Option("No models", ""));
      ui.modelInfo.textContent = `Could not load the models. ${error.message}`;
      ui.modelInfo.classList.add("error-text");
    } finally {
      ui.reloadModels.disabled = false;
      updateControls();
    }
  }

  function renderModelOptions(previous) {
    ui.modelInfo.classList.remove("error-text");
    const groups = KIND_GROUPS.map(([kind, label]) => {
      const group = document.createElement("optgroup");
      group.label = label;
      group.dataset.kind = kind;
      for (const model of models.values()) {
        if (kindOf(model) === kind) group.append(new Option(optionText(model), model.name));
      }
      return group;
    }).filter((group) => group.children.length);
    if (!groups.length) {
      ui.model.replaceChildren(new Option("No models", ""));
      ui.modelInfo.textContent = "The API serves no models.";
      return;
    }
    ui.model.replaceChildren(...groups);
    ui.model.disabled = false;
    if (models.has(previous)) ui.model.value = previous;
    ui.modelInfo.textContent = describeModel(ui.model.value);
  }

  // ---- images on the page -----------------------------------------------------

  function addFiles(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length) return;
    for (const file of files) items.push(createItem(file));
    announce(`${plural(files.length, "image")} added. ${pendingText()}`);
    updateControls();
  }

  // An image by URL: sent as image_url. No preview: the page loads nothing from elsewhere.
  function addUrl() {
    const url = ui.imageUrl.value.trim();
    if (!IMAGE_URL.test(url)) {
      ui.imageUrlInfo.textContent = "Enter an http://, https:// or gs:// URL.";
      ui.imageUrl.setAttribute("aria-invalid", "true");
      return;
    }
    ui.imageUrl.removeAttribute("aria-invalid");
    ui.imageUrlInfo.textContent = IMAGE_URL_HINT;
    const item = createItem({ name: url, url });
    item.el.img.replaceWith(element("span", "no-preview", "By URL"));
    items.push(item);
    ui.imageUrl.value = "";
    announce(`Image URL added. ${pendingText()}`);
    updateControls();
  }

  function createItem(file) {
    const card = ui.template.content.firstElementChild.cloneNode(true);
    const item = {
      file, card, model: null, state: "ready", statusUrl: null, predictionId: null,
      xhr: null, removed: false, retryable: false, previewUrl: file.url ? "" : URL.createObjectURL(file),
      el: {
        img: card.querySelector("img"), name: card.querySelector(".file-name"),
        badge: card.querySelector(".state-badge"), detail: card.querySelector(".state-detail"),
        progress: card.querySelector(".upload-progress"), result: card.querySelector(".result"),
        error: card.querySelector(".error"), remove: card.querySelector(".remove-button"),
        retry: card.querySelector(".retry-button"), statusLink: card.querySelector(".status-link"),
        cancel: card.querySelector(".cancel-button"),
      },
    };
    card.dataset.name = file.name;
    item.el.name.textContent = file.name;
    item.el.img.alt = `Preview of ${file.name}`;
    item.el.img.addEventListener("error", () => {
      // Not something the browser can show; the API will say what it thinks of it.
      item.el.img.replaceWith(element("span", "no-preview", "No preview"));
    }, { once: true });
    if (item.previewUrl) item.el.img.src = item.previewUrl;
    item.el.remove.setAttribute("aria-label", `Remove ${file.name}`);
    item.el.retry.setAttribute("aria-label", `Try ${file.name} again`);
    item.el.cancel.setAttribute("aria-label", `Cancel ${file.name}`);
    item.el.cancel.addEventListener("click", () => cancelPrediction(item));
    item.el.statusLink.setAttribute("aria-label", `Status URL of ${file.name}`);
    item.el.remove.addEventListener("click", () => removeItem(item));
    item.el.retry.addEventListener("click", () => startUpload(item, item.model));
    setState(item, "ready", "");
    ui.cards.append(card);
    return item;
  }

  function removeItem(item) {
    item.removed = true;
    if (item.xhr) item.xhr.abort();
    uploadQueue = uploadQueue.filter((queued) => queued !== item);
    URL.revokeObjectURL(item.previewUrl);
    const index = items.indexOf(item);
    items.splice(index, 1);
    item.card.remove();
    // Keep keyboard users where they were rather than dropping focus to <body>.
    const next = items[index] || items[index - 1];
    (next ? next.el.remove : ui.fileInput).focus();
    updateControls();
  }

  function setState(item, state, detail) {
    item.state = state;
    item.card.dataset.state = state;
    item.el.badge.textContent = STATE_NAMES[state] || state;
    item.el.detail.textContent = detail || "";
    item.el.progress.hidden = state !== "uploading";
    item.el.retry.hidden = !(state === "failed" && item.retryable);
    // Only a prediction no model service has started can be cancelled.
    item.el.cancel.hidden = state !== "queued";
    updateControls();
  }

  function showError(item, message) {
    item.el.error.textContent = message;
    item.el.error.hidden = !message;
  }

  function pendingText() {
    const ready = items.filter((item) => item.state === "ready").length;
    return ready ? `${plural(ready, "image")} ready to upload.` : "No images waiting to upload.";
  }

  function updateControls() {
    const ready = items.filter((item) => item.state === "ready").length;
    const model = ui.model.value;
    ui.uploadButton.disabled = !ready || !model || ui.model.disabled;
    ui.uploadButton.textContent = ready && model ? `Upload ${plural(ready, "image")} to ${model}` : "Upload";
    ui.clearButton.disabled = !items.some((item) => FINAL.has(item.state));
    ui.pendingSummary.textContent = items.length ? pendingText() : "No images chosen yet.";
    ui.imagesEmpty.hidden = items.length > 0;
  }

  // ---- uploads: one request per image, so each gets its own progress and error ----

  function startUpload(item, model) {
    item.model = model;
    item.retryable = false;
    showError(item, "");
    item.el.result.replaceChildren();
    item.el.progress.value = 0;
    setState(item, "uploading", `waiting to upload to ${model}`);
    uploadQueue.push(item);
    pumpUploads();
  }

  function pumpUploads() {
    while (activeUploads < MAX_UPLOADS && uploadQueue.length) {
      const item = uploadQueue.shift();
      activeUploads += 1;
      upload(item).finally(() => {
        activeUploads -= 1;
        pumpUploads();
      });
    }
  }

  // XMLHttpRequest rather than fetch: only it reports upload progress.
  function upload(item) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      item.xhr = xhr;
      const form = new FormData();
      if (item.file.url) form.append("image_url", item.file.url);
      else form.append("image", item.file, item.file.name);
      xhr.open("POST", `${API_BASE}/v1/models/${encodeURIComponent(item.model)}/predictions`);
      for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        item.el.progress.value = Math.round((event.loaded / event.total) * 100);
        item.el.detail.textContent = `to ${item.model}, ${percent(event.loaded / event.total)}`;
      });
      xhr.addEventListener("load", () => {
        const body = parseJson(xhr.responseText);
        if (xhr.status === 202 && body && body.status_url) {
          accepted(item, body);
        } else {
          // 503 means the backend hiccuped and a retry may work; 4xx is about this image.
          item.retryable = xhr.status >= 500;
          fail(item, apiErrorMessage(xhr.status, body), "rejected by the API");
        }
      });
      xhr.addEventListener("error", () => {
        item.retryable = true;
        fail(item, unreachableMessage(), "upload failed");
      });
      xhr.addEventListener("loadend", () => {
        item.xhr = null;
        resolve();
      });
      setState(item, "uploading", `to ${item.model}`);
      xhr.send(form);
    });
  }

  function accepted(item, body) {
    item.predictionId = body.id;
    item.statusUrl = new URL(body.status_url, `${API_BASE}/`).href;
    item.el.statusLink.href = item.statusUrl;
    item.el.statusLink.hidden = false;
    setState(item, body.status || "queued", `on ${item.model}`);
    announce(`${item.file.name}: uploaded, ${body.status || "queued"}.`);
    recordHistory(item);
    follow(item);
  }

  function fail(item, message, detail) {
    if (item.removed) return;
    showError(item, message);
    setState(item, "failed", detail);
    announce(`${item.file.name}: failed. ${message}`);
    recordHistory(item);
  }

  // POST .../{id}:cancel: the cancelled prediction (200), or why not (409: it started).
  async function cancelPrediction(item) {
    item.el.cancel.disabled = true;
    let response;
    try {
      response = await fetch(`${API_BASE}/v1/predictions/${encodeURIComponent(item.predictionId)}:cancel`, {
        method: "POST", cache: "no-store", headers: authHeaders(),
      });
    } catch {
      showError(item, unreachableMessage());
      return;
    } finally {
      item.el.cancel.disabled = false;
    }
    const body = parseJson(await response.text().catch(() => ""));
    if (response.ok && body && body.status) {
      showError(item, "");
      applyPrediction(item, body);
    } else {
      showError(item, apiErrorMessage(response.status, body));
    }
  }

  // ---- following a prediction through the long-poll ------------------------------

  // A small semaphore: with more images than slots, each poll holds for less time
  // so that every image gets its turn.
  async function acquirePollSlot() {
    if (activePolls >= MAX_POLLS) await new Promise((resolve) => pollWaiters.push(resolve));
    activePolls += 1;
    return pollWaiters.length ? SHARED_WAIT_SECONDS : WAIT_SECONDS;
  }

  function releasePollSlot() {
    activePolls -= 1;
    const next = pollWaiters.shift();
    if (next) next();
  }

  async function follow(item) {
    let failures = 0;
    while (!item.removed && !FINAL.has(item.state)) {
      const wait = await acquirePollSlot();
      const started = Date.now();
      let outcome;
      try {
        outcome = await pollOnce(item.statusUrl, wait);
      } finally {
        releasePollSlot();
      }
      if (item.removed) return;
      if (outcome.prediction) {
        failures = 0;
        applyPrediction(item, outcome.prediction);
        const early = MIN_POLL_INTERVAL_MS - (Date.now() - started);
        if (!FINAL.has(item.state) && early > 0) await sleep(early);
      } else if (outcome.final) {
        fail(item, outcome.final, "the status request was refused");
      } else {
        // Network trouble or a 5xx: back off, capped, with jitter so images don't retry in step.
        failures += 1;
        const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1)) * (0.75 + Math.random() * 0.5);
        item.el.detail.textContent = `${outcome.retry}; retrying in ${Math.round(delay / 1000)} s`;
        await sleep(delay);
      }
    }
  }

  // One status request: {prediction} on success, {final: message} when retrying is
  // pointless (4xx), {retry: reason} otherwise.
  async function pollOnce(statusUrl, wait) {
    const url = new URL(statusUrl);
    url.searchParams.set("wait", String(wait));
    // Answered as soon as the status moves (queued -> running), so "Running" is shown.
    url.searchParams.set("until", "change");
    let response;
    try {
      response = await fetch(url, {
        cache: "no-store", headers: authHeaders(), signal: AbortSignal.timeout((wait + 15) * 1000),
      });
    } catch {
      return { retry: "lost contact with the API" };
    }
    const body = parseJson(await response.text().catch(() => ""));
    if (response.ok && body && body.status) return { prediction: body };
    if (response.status >= 400 && response.status < 500 && response.status !== 429) {
      return { final: apiErrorMessage(response.status, body) };
    }
    return { retry: `the API answered HTTP ${response.status}` };
  }

  function applyPrediction(item, prediction) {
    const status = prediction.status;
    if (status === item.state && !FINAL.has(status)) {
      item.el.detail.textContent = `on ${item.model}, still ${status}`;
      return;
    }
    if (status === "succeeded") {
      renderResult(item, prediction);
      setState(item, "succeeded", `${item.model} v${prediction.model_version ?? "?"}`);
      announce(`${item.file.name}: ${summarize(prediction.result)}`);
    } else if (status === "failed") {
      const message = (prediction.error && prediction.error.message) || "The prediction failed.";
      showError(item, message);
      setState(item, "failed", `on ${item.model}`);
      announce(`${item.file.name}: failed. ${message}`);
    } else {
      setState(item, status, `on ${item.model}`);
      announce(`${item.file.name}: ${status}.`);
    }
    recordHistory(item);
  }

  // ---- results ------------------------------------------------------------------

  function isDetection(result) {
    return result && typeof result.match === "boolean";
  }

  function summarize(result) {
    if (isDetection(result)) return `${result.match ? "yes" : "no"}, ${result.label}, score ${decimal(result.score)}.`;
    if (result && result.top_k && result.top_k.length) {
      return `most likely ${result.top_k[0].label}, ${percent(result.top_k[0].score)}.`;
    }
    return "done.";
  }

  function renderResult(item, prediction) {
    const result = prediction.result || {};
    const box = item.el.result;
    box.replaceChildren();
    if (isDetection(result)) {
      const verdict = element("p", `verdict verdict-${result.match ? "yes" : "no"}`);
      verdict.append(element("span", "verdict-word", result.match ? "Yes" : "No"),
        element("span", "verdict-label", result.match ? `a ${result.label}` : `not a ${result.label}`));
      box.append(verdict, element("p", "verdict-score", `score ${decimal(result.score)}`));
      if (result.top_class) {
        const why = result.rule === "top1" ? ", which is why it says yes"
          : result.rule === "threshold" ? "; yes because the score reached the threshold" : "";
        box.append(element("p", "verdict-rule", `top-1 class: ${result.top_class.label}${why}`));
      }
    } else if (Array.isArray(result.top_k)) {
      const list = element("ol", "top-k");
      list.setAttribute("aria-label", `Top ${result.top_k.length} labels for ${item.file.name}`);
      for (const entry of result.top_k) {
        const row = element("li", "top-k-row");
        const bar = element("span", "bar");
        const fill = element("span", "bar-fill");
        fill.style.width = `${Math.max(0, Math.min(1, Number(entry.score) || 0)) * 100}%`;
        bar.append(fill);
        row.append(element("span", "top-k-label", entry.label), element("span", "top-k-score", percent(entry.score)), bar);
        list.append(row);
      }
      box.append(list);
    } else {
      box.append(element("pre", "raw-result", JSON.stringify(result, null, 2)));
    }
    if (result.weights) box.append(element("p", "hint", `Weights: ${result.weights}`));
    const timings = prediction.timings;
    if (timings && timings.model_ms != null) {
      const parts = [`queue ${Math.round(timings.queue_ms ?? 0)} ms`, `model ${Math.round(timings.model_ms)} ms`];
      if (timings.batch_size) parts.push(`batch of ${timings.batch_size}`);
      box.append(element("p", "hint timings", parts.join(" · ")));
    }
  }

  // ---- history of this session's requests -----------------------------------------

  // sessionStorage throws where storage is disabled; the page works without it.
  function stored(key) {
    try {
      return sessionStorage.getItem(key);
    } catch {
      return null;
    }
  }

  function store(key, value) {
    try {
      sessionStorage.setItem(key, value);
    } catch {
      // Full or disabled: only the history and the last model are lost.
    }
  }

  function readHistory() {
    const entries = parseJson(stored(HISTORY_KEY) || "[]");
    return Array.isArray(entries)
      ? entries.filter((entry) => entry && typeof entry.at === "string" && webUrl(entry.statusUrl))
      : [];
  }

  function recordHistory(item) {
    if (!item.predictionId) return; // only requests the API accepted have a status URL
    const history = readHistory();
    const previous = history.find((entry) => entry.id === item.predictionId);
    const entries = history.filter((entry) => entry.id !== item.predictionId);
    entries.unshift({
      id: item.predictionId, file: item.file.name, model: item.model, status: item.state,
      statusUrl: item.statusUrl, at: previous ? previous.at : new Date().toISOString(),
    });
    entries.sort((a, b) => b.at.localeCompare(a.at));
    store(HISTORY_KEY, JSON.stringify(entries.slice(0, HISTORY_SIZE)));
    renderHistory();
  }

  function renderHistory() {
    const entries = readHistory();
    ui.historyEmpty.hidden = entries.length > 0;
    ui.history.replaceChildren(...entries.map((entry) => {
      const row = element("li", "history-row");
      row.dataset.status = entry.status;
      const link = element("a", "history-link", statusPath(entry.statusUrl));
      link.href = webUrl(entry.statusUrl);
      link.target = "_blank";
      link.rel = "noopener";
      const time = element("time", "", new Date(entry.at).toLocaleTimeString());
      time.dateTime = entry.at;
      row.append(
        element("span", "history-file", entry.file),
        element("span", "history-meta", `${entry.model} · `),
        element("span", `history-status status-${entry.status}`, entry.status),
        element("span", "history-meta", " · "), time, link);
      return row;
    }));
  }

  // ---- wiring -----------------------------------------------------------------------

  function onSubmit(event) {
    event.preventDefault();
    const model = ui.model.value;
    if (!model) return;
    const ready = items.filter((item) => item.state === "ready");
    for (const item of ready) startUpload(item, model);
    announce(`Uploading ${plural(ready.length, "image")} to ${model}.`);
  }

  function clearFinished() {
    for (const item of items.filter((candidate) => FINAL.has(candidate.state))) {
      item.removed = true;
      URL.revokeObjectURL(item.previewUrl);
      item.card.remove();
      items.splice(items.indexOf(item), 1);
    }
    ui.fileInput.focus();
    updateControls();
  }

  function hasFiles(event) {
    return event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  }

  function wire() {
    ui.apiKey.value = stored(API_KEY) || "";
    ui.apiKey.addEventListener("change", () => {
      store(API_KEY, ui.apiKey.value.trim());
      loadModels();
    });
    ui.form.addEventListener("submit", onSubmit);
    ui.addUrl.addEventListener("click", addUrl);
    ui.imageUrl.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault(); // Enter adds the URL rather than submitting the form
      addUrl();
    });
    ui.clearButton.addEventListener("click", clearFinished);
    ui.reloadModels.addEventListener("click", loadModels);
    ui.model.addEventListener("change", () => {
      store(MODEL_KEY, ui.model.value);
      ui.modelInfo.textContent = describeModel(ui.model.value);
      updateControls();
    });
    ui.fileInput.addEventListener("change", () => {
      addFiles(ui.fileInput.files);
      ui.fileInput.value = ""; // so that choosing the same file again still fires
    });
    // Files dropped anywhere on the page are taken, so a near miss doesn't navigate away.
    let dragDepth = 0;
    document.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      dragDepth += 1;
      ui.dropzone.classList.add("dragging");
    });
    document.addEventListener("dragleave", () => {
      dragDepth = Math.max(0, dragDepth - 1);
      if (!dragDepth) ui.dropzone.classList.remove("dragging");
    });
    document.addEventListener("dragover", (event) => {
      if (hasFiles(event)) event.preventDefault();
    });
    document.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth = 0;
      ui.dropzone.classList.remove("dragging");
      addFiles(event.dataTransfer.files);
    });
    document.addEventListener("paste", (event) => {
      const files = event.clipboardData ? Array.from(event.clipboardData.files) : [];
      if (!files.length) return;
      event.preventDefault();
      addFiles(files);
    });
  }

  wire();
  renderHistory();
  updateControls();
  if (!API_BASE) {
    ui.configError.textContent = "config.js does not set apiBaseUrl, so the page does not know where the API is.";
    ui.configError.hidden = false;
    ui.model.replaceChildren(new Option("No API configured", ""));
  } else {
    loadModels();
  }
})();
