"""The web page in Debian's Chromium, against the real local stack on the emulators."""

from __future__ import annotations

import functools
import json
import re
import shutil
import threading
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from scripts.static_site import WEB_ROOT, SiteHandler
from tests.images import sample

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RESULT_TIMEOUT_MS = 90_000
FINAL_STATE = re.compile(r"^(succeeded|failed|cancelled)$")
# ImageNet class ids: tabby, tiger cat, Persian, Siamese, Egyptian cat; golden retriever.
TABBY, CAT_CLASSES, GOLDEN_RETRIEVER = 281, {281, 282, 283, 284, 285}, 207


@pytest.fixture(scope="module")
def browser() -> Browser:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Session:
    """A fresh browser context on the page, recording what the page asked for and complained about."""

    def __init__(self, browser: Browser, stack, width: int = 1280, height: int = 900,
                 with_key: bool = True) -> None:
        self.stack = stack
        self.context = browser.new_context(viewport={"width": width, "height": height})
        if with_key and stack.api_key:
            # As if the user had typed the stack's key into the page earlier in this tab.
            self.context.add_init_script(
                f"sessionStorage.setItem('inference.apiKey', {json.dumps(stack.api_key)})")
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console",
                     lambda message: message.type == "error" and self.console_errors.append(message.text))
        self.page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def open(self, url: str | None = None) -> Page:
        self.page.goto(url or self.stack.web_url)
        return self.page

    def open_ready(self) -> Page:
        """The page with its model list loaded."""
        page = self.open()
        expect(page.locator("#model")).to_be_enabled(timeout=15_000)
        return page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session(browser, stack):
    KEY_HEADERS.update(stack.headers())
    opened = Session(browser, stack)
    yield opened
    opened.close()
    assert not opened.console_errors, f"the page logged errors: {opened.console_errors}"


# Set by the session fixture: the stack's development key, for the checks made outside the browser.
KEY_HEADERS: dict[str, str] = {}


def card(page: Page, name: str) -> Locator:
    return page.locator(f'.card[data-name="{name}"]')


def upload(page: Page, model: str, files: list[Path]) -> None:
    page.select_option("#model", model)
    page.set_input_files("#file-input", [str(path) for path in files])
    page.click("#upload-button")


def wait_final(page: Page, name: str, expected: str = "succeeded") -> Locator:
    located = card(page, name)
    expect(located).to_have_attribute("data-state", FINAL_STATE, timeout=RESULT_TIMEOUT_MS)
    state = located.get_attribute("data-state")
    assert state == expected, f"{name} ended {state}: {located.inner_text()}"
    return located


def top_labels(located: Locator) -> list[str]:
    return located.locator(".top-k-label").all_inner_texts()


def api_result(located: Locator) -> dict:
    """The result the API holds for the prediction behind a card, from the card's status link."""
    href = located.locator(".status-link").get_attribute("href")
    return requests.get(href, headers=KEY_HEADERS, timeout=10).json()["result"]


def verdict(located: Locator) -> str:
    return located.locator(".verdict-word").inner_text().strip().lower()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_classifier_results_for_two_photos(session):
    page = session.open_ready()
    tabby, retriever = sample("tabby"), sample("golden_retriever")
    upload(page, "efficientnet-lite0", [tabby, retriever])

    tabby_card = wait_final(page, tabby.name)
    retriever_card = wait_final(page, retriever.name)
    # The page shows exactly the API's top 5, and those are right for these photos.
    tabby_top, retriever_top = api_result(tabby_card)["top_k"], api_result(retriever_card)["top_k"]
    assert top_labels(tabby_card) == [entry["label"] for entry in tabby_top]
    assert top_labels(retriever_card) == [entry["label"] for entry in retriever_top]
    assert tabby_top[0]["class_id"] in CAT_CLASSES and TABBY in [e["class_id"] for e in tabby_top], tabby_top
    assert retriever_top[0]["class_id"] == GOLDEN_RETRIEVER, retriever_top
    assert any("tabby" in label.lower() for label in top_labels(tabby_card))
    assert "golden retriever" in top_labels(retriever_card)[0].lower()
    shown = retriever_card.locator(".top-k-score").first.inner_text()
    assert shown.endswith("%") and float(shown[:-1]) == pytest.approx(retriever_top[0]["score"] * 100,
                                                                      abs=0.051)
    assert retriever_card.locator(".bar-fill").first.bounding_box()["width"] > 0

    # The history lists both requests, each linking to a status URL the API answers.
    links = page.locator("#history .history-link")
    expect(links).to_have_count(2)
    for href in [links.nth(i).get_attribute("href") for i in range(2)]:
        assert href.startswith(f"{session.stack.api_url}/v1/predictions/")
        assert requests.get(href, headers=session.stack.headers(), timeout=10).json()["status"] == "succeeded"
    expect(page.locator("#history .history-status")).to_have_text(["succeeded", "succeeded"])
    screenshot(page, "web-results.png")

    # Followed by long-polls, not a tight loop: every status request waits, and there are few.
    polls = [url for url in session.requests if "/v1/predictions/" in url]
    assert polls and all(parse_qs(urlsplit(url).query).get("wait") in (["25"], ["5"]) for url in polls), polls
    per_prediction = Counter(urlsplit(url).path for url in polls)
    assert len(per_prediction) == 2 and max(per_prediction.values()) <= 5, per_prediction
    # Nothing was loaded from anywhere but the page's own origin and the API.
    origins = {session.stack.web_url, session.stack.api_url}
    outside = [url for url in session.requests
               if not url.startswith("blob:")
               and f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" not in origins]
    assert not outside, outside


def test_detectors_answer_yes_or_no(session):
    page = session.open_ready()
    tabby, retriever = sample("tabby"), sample("golden_retriever")
    upload(page, "cat", [tabby, retriever])
    assert verdict(wait_final(page, tabby.name)) == "yes"
    retriever_card = wait_final(page, retriever.name)
    assert verdict(retriever_card) == "no"
    expect(retriever_card.locator(".verdict-score")).to_have_text(re.compile(r"^score 0\.\d\d$"))
    screenshot(page, "web-cat-detector.png")

    page.click("#clear-button")
    expect(page.locator(".card")).to_have_count(0)
    upload(page, "dog", [retriever])
    assert verdict(wait_final(page, retriever.name)) == "yes"
    expect(page.locator("#history .history-row")).to_have_count(3)


def test_a_queued_prediction_is_cancelled_from_its_card(session):
    from tests.integration.test_control import MODEL, model_service_down

    page = session.open_ready()
    tabby = sample("tabby")
    with model_service_down(session.stack, MODEL):  # nothing can start it meanwhile
        upload(page, MODEL, [tabby])
        located = card(page, tabby.name)
        expect(located).to_have_attribute("data-state", "queued", timeout=30_000)
        located.locator(".cancel-button").click()
        wait_final(page, tabby.name, expected="cancelled")
        expect(located.locator(".cancel-button")).to_be_hidden()
        expect(located.locator(".state-badge")).to_have_text("Cancelled")
    href = located.locator(".status-link").get_attribute("href")
    assert requests.get(href, headers=KEY_HEADERS, timeout=10).json()["status"] == "cancelled"


def test_api_error_is_shown_next_to_its_image(session, tmp_path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("these are notes, not a photo\n" * 20)
    # What the API itself says about this file, to compare with what the page shows.
    with not_an_image.open("rb") as file:
        answer = requests.post(f"{session.stack.api_url}/v1/models/tiny-test/predictions",
                               files={"image": (not_an_image.name, file, "image/jpeg")},
                               headers=session.stack.headers(), timeout=10)
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert "not an image" in message

    page = session.open_ready()
    tabby = sample("tabby")
    upload(page, "tiny-test", [not_an_image, tabby])
    bad = wait_final(page, not_an_image.name, expected="failed")
    expect(bad.locator(".error")).to_have_text(message)
    expect(bad.locator(".error")).to_be_visible()
    # One bad file spoils nothing else: each image went as its own request.
    wait_final(page, tabby.name)
    expect(card(page, tabby.name).locator(".error")).to_be_hidden()
    expect(page.locator("#history .history-row")).to_have_count(1)
    screenshot(page, "web-error.png")
    # Chromium logs the refused upload itself; that one is expected.
    session.console_errors.remove(
        "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)")


@pytest.fixture
def foreign_site(stack):
    """The same page served from an origin the API does not allow."""
    handler = functools.partial(SiteHandler, api_base_url=stack.api_url, directory=str(WEB_ROOT))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_cors_granted_only_to_configured_origins(browser, stack, foreign_site):
    models_url = f"{stack.api_url}/v1/models"
    preflight = {"Access-Control-Request-Method": "POST"}
    for origin in ("http://evil.example", foreign_site):
        denied = requests.get(models_url, headers={"Origin": origin}, timeout=10)
        assert "Access-Control-Allow-Origin" not in denied.headers
        assert "Origin" in denied.headers.get("Vary", "")
        denied = requests.options(f"{stack.api_url}/v1/models/cat/predictions",
                                  headers={"Origin": origin, **preflight}, timeout=10)
        assert "Access-Control-Allow-Origin" not in denied.headers
    for origin in (stack.web_url, stack.web_url.replace("127.0.0.1", "localhost")):
        granted = requests.options(f"{stack.api_url}/v1/models/cat/predictions",
                                   headers={"Origin": origin, **preflight}, timeout=10)
        assert granted.status_code == 204
        assert granted.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in granted.headers["Access-Control-Allow-Methods"]
        assert requests.get(models_url, headers={"Origin": origin},
                            timeout=10).headers["Access-Control-Allow-Origin"] == origin

    # In the browser, the same page from the foreign origin cannot read the API.
    foreign = Session(browser, stack)
    try:
        page = foreign.open(foreign_site)
        expect(page.locator("#model-info")).to_contain_text("Could not load the models", timeout=15_000)
        expect(page.locator("#model")).to_be_disabled()
        outcome = page.evaluate("""url => fetch(url).then(r => "read " + r.status, e => e.name)""",
                                models_url)
        assert outcome == "TypeError"
        assert any("CORS policy" in text for text in foreign.console_errors), foreign.console_errors
    finally:
        foreign.close()


def test_model_list_tells_detectors_from_classifiers(session):
    listing = requests.get(f"{session.stack.api_url}/v1/models", headers=session.stack.headers(),
                           timeout=10).json()["models"]
    page = session.open_ready()
    group_of = dict(page.eval_on_selector_all(
        "#model option", "options => options.map(o => [o.value, o.parentElement.dataset.kind])"))
    assert group_of.keys() == {model["name"] for model in listing}
    for model in listing:
        expected = model["kind"] if model["kind"] in ("classifier", "detector") else "other"
        assert group_of[model["name"]] == expected, model
    assert group_of["efficientnet-lite0"] == "classifier"
    assert group_of["cat"] == group_of["dog"] == "detector"
    assert group_of["mean-colour"] == "classifier"  # a model of a user's own, like the built-in ones
    expect(page.locator('optgroup[data-kind="detector"]')).to_have_attribute("label", re.compile("Detectors"))
    expect(page.locator('#model option[value="cat"]')).to_have_text(re.compile(r"is it a cat\?"))

    page.select_option("#model", "cat")
    expect(page.locator("#model-info")).to_contain_text("Detector")
    page.select_option("#model", "efficientnet-lite0")
    expect(page.locator("#model-info")).to_contain_text("Classifier")


def test_phone_width_and_keyboard_only(browser, stack, tmp_path):
    phone = Session(browser, stack, width=375, height=800)
    try:
        page = phone.open_ready()
        # Playwright turns file chooser interception on without waiting for it; a listener
        # added now has it on long before Enter is pressed below.
        page.on("filechooser", lambda _chooser: None)
        # Tab from the top of the page to the file input; the drop zone shows it has focus.
        focused = []
        for _ in range(8):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
            if focused[-1] == "file-input":
                break
        assert focused[-1] == "file-input", focused
        outline = page.eval_on_selector("#dropzone", "zone => getComputedStyle(zone).outlineStyle")
        assert outline != "none"

        # A long unbroken file name must wrap, not widen the page.
        long_name = tmp_path / ("a_photo_with_a_very_long_name_that_does_not_break_" * 3 + "tabby.jpg")
        shutil.copy(sample("tabby"), long_name)
        with page.expect_file_chooser() as chooser:
            page.keyboard.press("Enter")
        chooser.value.set_files(str(long_name))
        expect(card(page, long_name.name)).to_have_attribute("data-state", "ready")

        # Slow the upload so the progress bar can be seen moving.
        cdp = phone.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 40_000})
        # Then the image URL field and its button, beside the picker, then Upload.
        for expected in ("image-url", "add-url", "upload-button"):
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.id") == expected
        page.keyboard.press("Enter")
        progress = card(page, long_name.name).locator(".upload-progress")
        expect(progress).to_be_visible()
        page.wait_for_function(
            "el => el.value > 0 && el.value < 100", arg=progress.element_handle(), timeout=15_000)
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

        wait_final(page, long_name.name)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a 375px screen"
        screenshot(page, "web-phone.png")
        assert not phone.console_errors, phone.console_errors
    finally:
        phone.close()


def test_the_page_asks_for_an_api_key_and_keeps_it_in_session_storage_only(browser, stack):
    assert stack.api_key, "the local stack serves with API keys on"
    keyless = Session(browser, stack, with_key=False)
    try:
        page = keyless.open()
        expect(page.locator("#model-info")).to_contain_text("API key", timeout=15_000)
        expect(page.locator("#model")).to_be_disabled()
        page.fill("#api-key", stack.api_key)
        page.dispatch_event("#api-key", "change")
        expect(page.locator("#model")).to_be_enabled(timeout=15_000)
        assert page.evaluate("sessionStorage.getItem('inference.apiKey')") == stack.api_key
        assert page.evaluate("JSON.stringify(localStorage)") == "{}"
        # Reloaded in the same tab, the key is still there.
        page.reload()
        expect(page.locator("#model")).to_be_enabled(timeout=15_000)
        assert page.input_value("#api-key") == stack.api_key
    finally:
        keyless.close()
    # The refused model list is the only error the page logged.
    assert [e for e in keyless.console_errors if "401" not in e] == [], keyless.console_errors


def test_running_is_shown_and_each_result_has_its_times(session):
    """The page long-polls with until=change, so a prediction's `running` is shown when it
    happens; here the first status answer is held at `running` to see it every time."""
    page = session.open_ready()
    answered: list[str] = []

    def first_running(route):
        response = route.fetch()
        body = response.json()
        if not answered:
            body = {**body, "status": "running", "result": None, "completed_at": None}
        answered.append(body["status"])
        route.fulfill(response=response, json=body)

    page.route(re.compile(r".*/v1/predictions/[0-9a-f]+\?.*"), first_running)
    tabby = sample("tabby")
    upload(page, "cat", [tabby])
    located = card(page, tabby.name)
    expect(located).to_have_attribute("data-state", "running", timeout=RESULT_TIMEOUT_MS)
    expect(located.locator(".state-badge")).to_have_text("Running")
    located = wait_final(page, tabby.name)
    polls = [url for url in session.requests if "/v1/predictions/" in url]
    assert polls and all("until=change" in url for url in polls), polls
    expect(located.locator(".timings")).to_have_text(
        re.compile(r"^queue \d+ ms · model \d+ ms · batch of \d+$"))
    expect(located.locator(".verdict-rule")).to_have_text(
        re.compile(r"^top-1 class: .*cat, which is why it says yes$"))


def test_an_image_by_url_beside_the_file_picker(session):
    from tests.image_servers import Server as ImageServer

    images = ImageServer({"/tabby.jpg": (200, {"Content-Type": "image/jpeg"}, sample("tabby").read_bytes())})
    missing = "gs://no-such-bucket-here/cat.jpg"
    try:
        page = session.open_ready()
        page.select_option("#model", "cat")
        page.fill("#image-url", "not a url")
        page.press("#image-url", "Enter")
        expect(page.locator("#image-url-info")).to_have_text("Enter an http://, https:// or gs:// URL.")
        expect(page.locator(".card")).to_have_count(0)
        for url in (images.url("/tabby.jpg"), missing):
            page.fill("#image-url", url)
            page.press("#image-url", "Enter")  # adds it; the form is not submitted
        expect(page.locator(".card")).to_have_count(2)
        page.click("#upload-button")
        assert verdict(wait_final(page, images.url("/tabby.jpg"))) == "yes"
        failed = wait_final(page, missing, expected="failed")
        expect(failed.locator(".error")).to_contain_text(f"{missing} does not exist")
        assert images.hits == ["/tabby.jpg"]  # fetched by the API only: the page shows no preview
    finally:
        images.stop()
    session.console_errors.remove(
        "Failed to load resource: the server responded with a status of 422 (UNPROCESSABLE ENTITY)")
