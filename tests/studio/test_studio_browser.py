"""The studio's page in real Chromium (driven by Playwright), against the real server in a subprocess.

One server (`python -m dreamscope studio --port 0 --data TMP`) serves the whole module; each test opens the page
in a fresh browser context and watches it for console errors, uncaught exceptions, failed requests and HTTP
errors. Pictures are small and steps few, so the module stays quick on two CPU cores.

With DREAMSCOPE_SCREENSHOTS=1 the dream test also writes docs/images/studio.png (1280x800) for the README.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from browser import CHROMIUM_ARGS, Watch, chromium_binary, needs_playwright
from conftest import chelsea

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = os.environ.get("DREAMSCOPE_SCREENSHOTS") == "1"
ADDRESS = re.compile(r"dreamscope studio: (http://127\.0\.0\.1:\d+/)")
# A dream small enough for a second or two of work, long enough to send several previews.
SMALL = {"max_size": "160", "octaves": "2", "steps": "12"}


# -- the server and the browser -------------------------------------------------------------------------------


class Server:
    """`dreamscope studio` in a subprocess; its output is read on a thread (so its pipe never fills)."""

    def __init__(self, data: Path):
        self.data = data  # the studio's data folder, for tests that read what it wrote
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dreamscope", "studio", "--port", "0", "--data", str(data)],
            cwd=data,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        found: queue.Queue = queue.Queue()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                match = ADDRESS.search(line)
                if match:
                    found.put(match.group(1))
            found.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            self.url = found.get(timeout=90)
        except queue.Empty:
            self.url = None
        if self.url is None:
            self.stop()
            raise AssertionError("the studio did not print its address:\n" + "\n".join(self.lines[-30:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    needs_playwright()
    server = Server(tmp_path_factory.mktemp("studio-data"))
    yield server
    server.stop()
    assert "Traceback" not in "\n".join(server.lines), "\n".join(server.lines[-40:])


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_binary(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def studio(server, browser):
    """(page, watch) on a fresh context at 1280x800, the page loaded and ready."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    watch = Watch(page, server.url)
    page.goto(server.url)
    page.wait_for_selector("body.ready", timeout=30_000)
    yield page, watch
    context.close()
    for job in api(server, "GET", "/api/jobs"):  # nothing a failed test left running holds up the next one
        if job["state"] in ("queued", "running"):
            api(server, "POST", f"/api/jobs/{job['id']}/cancel")


def api(server, method: str, path: str):
    request = urllib.request.Request(server.url.rstrip("/") + path, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        if error.code == 409:  # it ended meanwhile
            return None
        raise


def job_id_of(response) -> str:
    assert response.status == 201, (response.status, response.text())
    return response.json()["id"]


def dream_tab(page):
    page.click("#tab-dream")
    return page.locator("#form-dream")


def upload_photo(page, path: Path) -> None:
    form = dream_tab(page)
    form.locator('.drop[data-role="input"] input[type=file]').set_input_files(str(path))
    page.wait_for_selector('#form-dream .drop[data-role="input"].filled .drop-thumb img', timeout=20_000)


def fill(page, recipe: str, values: dict) -> None:
    form = page.locator(f"#form-{recipe}")
    for name, value in values.items():
        field = form.locator(f'.field[data-field="{name}"]')
        more = field.locator("xpath=ancestor::details[1]")
        if more.count() and not more.evaluate("d => d.open"):
            more.locator("summary").click()
        field.locator("input, select").first.fill(value)


def wait_until(page, expression: str, timeout: float = 30_000) -> None:
    """Wait until a JavaScript expression is true in the page. Polled from here with `evaluate`: the studio's
    Content-Security-Policy forbids the eval that Playwright's own wait_for_function polling needs."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)


def choose(page, recipe: str, name: str, option: str) -> None:
    """Click one option of a field with a few choices."""
    page.locator(f'#form-{recipe} .field[data-field="{name}"] .segment').filter(
        has_text=re.compile(f"^{re.escape(option)}$")
    ).click()


def wait_state(page, job: str, states, timeout: float = 60) -> str:
    """Wait until the page shows the job in one of `states` (queue or gallery); returns the state."""
    states = [states] if isinstance(states, str) else list(states)
    selector = ", ".join(f'[data-job-id="{job}"][data-state="{s}"]' for s in states)
    page.wait_for_selector(selector, timeout=timeout * 1000, state="attached")
    return page.locator(selector).first.get_attribute("data-state")


PREVIEW_LOG = """() => {
  window.__previews = [];
  const img = document.getElementById('stage-image');
  new MutationObserver(() => {
    const running = !document.getElementById('progress').hidden;
    if (img.dataset.preview) window.__previews.push([img.dataset.preview, img.getAttribute('src'), running]);
  }).observe(img, {attributes: true, attributeFilter: ['src', 'data-preview']});
}"""


# -- tests --------------------------------------------------------------------------------------------------------


def test_the_browser_check_catches_a_broken_page(studio, server):
    """The checks the other tests rely on must be able to fail: a console error, an uncaught exception, a request
    answered with 404, a request that fails and one that leaves the studio's address are each caught."""
    page, watch = studio
    assert watch.problems == []
    page.evaluate("""() => {
        console.error('boom');
        setTimeout(() => { undefinedFunction(); }, 0);
        const missing = new Image(); missing.src = '/api/jobs/000000000000/preview';
        const away = new Image(); away.src = 'http://127.0.0.1:9/x.png';
        document.body.append(missing, away);
    }""")
    page.wait_for_timeout(1500)
    text = "\n".join(watch.problems)
    for needle in (
        "console.error: boom",
        "exception:",
        "HTTP 404",
        "request failed: http://127.0.0.1:9/x.png",
        "off-site request: http://127.0.0.1:9/x.png",
    ):
        assert needle in text, (needle, watch.problems)


def test_the_page_loads_cleanly_with_the_models_layers_and_classes(studio, server):
    page, watch = studio
    info = page.evaluate("() => fetch('/api/info').then(r => r.json())")
    tabs = page.locator("#modes .mode")
    assert tabs.count() >= 5 and page.locator("#tab-dream").get_attribute("aria-selected") == "true"
    # the form is built from the fields the server lists: every field of every recipe is there
    for recipe, spec in info["recipes"].items():
        if page.locator(f"#form-{recipe}").count():
            for field in spec["fields"]:
                assert page.locator(f'#form-{recipe} .field[data-field="{field["name"]}"]').count() == 1, (recipe, field["name"])
    # defaults shown are the library's
    defaults = {f["name"]: f["default"] for f in info["recipes"]["dream"]["fields"]}
    assert page.input_value('#form-dream [name="octaves"]') == str(defaults["octaves"])
    assert page.input_value('#form-dream [name="steps"]') == str(defaults["steps"])
    layers = page.eval_on_selector_all("#layer-names option", "options => options.map(o => o.value)")
    assert layers == [layer["name"] for layer in info["model"]["layers"] if layer["stride"]] and "stage4.2" in layers
    assert page.locator("#class-names option").count() >= 1000
    assert page.locator('#class-names option[value="banana"]').count() == 1
    # a calm, full-window layout: no horizontal scrolling, the stage the widest column
    sizes = page.evaluate("""() => ({overflow: document.documentElement.scrollWidth - innerWidth,
        stage: document.getElementById('stage').getBoundingClientRect().width,
        controls: document.getElementById('controls').getBoundingClientRect().width})""")
    assert sizes["overflow"] <= 0 and sizes["stage"] > sizes["controls"]
    page.set_viewport_size({"width": 1024, "height": 700})
    assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0
    assert watch.problems == []


def test_dream_watch_it_live_find_it_in_the_gallery_and_make_it_again(studio, server, tmp_path):
    page, watch = studio
    photo = tmp_path / "cat.png"
    chelsea((320, 240)).save(photo)
    upload_photo(page, photo)
    assert page.locator("#stage-image").get_attribute("src").startswith("/api/uploads/")
    # 40 steps (about 1.5 s): long enough for several previews whatever the machine (12 took 0.5 s, sometimes one)
    fill(page, "dream", {**SMALL, "steps": "40", "layer": "stage4.2", "seed": "3"})
    assert page.locator('#form-dream .field[data-field="octaves"]').get_attribute("class").count("changed") == 1
    page.evaluate(PREVIEW_LOG)
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        page.click("#form-dream button[type=submit]")
    first = job_id_of(posted.value)
    sent = posted.value.request.post_data_json
    # only the changed fields are sent
    assert sent["recipe"] == "dream" and set(sent["settings"]) == {"max_size", "octaves", "steps", "layer", "seed"}
    assert sent["settings"]["octaves"] == 2 and sent["settings"]["layer"] == "stage4.2" and set(sent["inputs"]) == {"input"}

    page.wait_for_selector("#progress:not([hidden])", timeout=10_000)
    wait_state(page, first, "done", timeout=90)
    previews = page.evaluate("window.__previews")
    live = [p for p in previews if p[2]]
    assert len({p[0] for p in live}) >= 2, f"the picture did not change while the dream ran: {previews}"
    assert all(f"/api/jobs/{first}/preview?v=" in p[1] for p in live)
    # the result replaces the preview, and the job is in the gallery
    wait_until(page, f"document.getElementById('stage-image').getAttribute('src').includes('/api/jobs/{first}/files/')")
    wait_until(page, "document.getElementById('stage-image').naturalWidth > 0")
    assert page.locator("#progress").is_hidden()
    item = page.locator(f'#gallery-list .gallery-item[data-job-id="{first}"]')
    item.wait_for()
    assert "stage4.2" in item.inner_text()
    wait_until(page, f"document.querySelector('[data-job-id=\"{first}\"] .thumb img').naturalWidth > 0")
    download = page.locator('#caption a[data-download="PNG"]')
    assert download.count() == 1 and f"/api/jobs/{first}/files/" in download.get_attribute("href")
    # settings and provenance
    page.click("#caption details.provenance summary")
    record = page.locator("#caption .record dl")
    record.wait_for(timeout=10_000)
    assert "Seed" in record.inner_text() and "3" in record.inner_text()
    assert "Layer" in page.locator("#caption .kv").first.inner_text()

    # make it again from the gallery: a new job with the same settings, done too
    item.locator(".gallery-open").click()
    with page.expect_response(lambda r: "/again" in r.url) as posted:
        page.click('#caption button[data-action="again"]')
    second = job_id_of(posted.value)
    assert second != first
    wait_state(page, second, "done", timeout=90)
    again = page.evaluate(f"() => fetch('/api/jobs/{second}').then(r => r.json())")
    assert again["parent"] == first and again["settings"]["layer"] == "stage4.2" and again["settings"]["seed"] == 3
    assert page.locator("#gallery-list .gallery-item").first.get_attribute("data-job-id") == second  # newest first

    # "use these settings" puts them back in the form
    page.click('#caption button[data-action="load"]')
    assert page.input_value('#form-dream [name="layer"]') == "stage4.2"
    assert page.input_value('#form-dream [name="octaves"]') == "2"

    if SCREENSHOTS:
        _screenshot(page, server)
    assert watch.unexpected() == []


def _screenshot(page, server) -> None:
    """docs/images/studio.png: a finished dream of a bigger photo, with its layer ladder and the gallery."""
    page.set_viewport_size({"width": 1280, "height": 800})
    page.click("#tab-dream")
    page.locator('#form-dream .drop[data-role="input"] button[data-sample="coffee"]').click()
    wait_until(
        page, """document.querySelector('#form-dream .drop[data-role="input"] .drop-name').textContent.startsWith('coffee')"""
    )
    page.click("#form-dream .actions button.ghost")  # reset all
    page.click("#see-layers")
    page.wait_for_selector("#ladder-row .rung img", timeout=120_000)
    page.locator('#ladder-row .rung[data-layer="stage4.2"]').click()
    fill(page, "dream", {"max_size": "640", "octaves": "4", "steps": "10"})
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        page.click("#form-dream button[type=submit]")
    job = job_id_of(posted.value)
    wait_state(page, job, "done", timeout=240)
    wait_until(page, "document.getElementById('stage-image').naturalWidth > 0 && [...document.images].every(i => i.complete)")
    page.evaluate("""() => {
        document.querySelectorAll('#form-dream details.more').forEach(d => { d.open = false; });
        document.getElementById('controls').scrollTop = 0;
        document.activeElement.blur();
    }""")
    page.mouse.move(1270, 790)
    page.wait_for_timeout(300)
    out = ROOT / "docs" / "images" / "studio.png"
    page.screenshot(path=str(out))


def test_cancel_a_running_dream(studio, server, tmp_path):
    page, watch = studio
    photo = tmp_path / "cat.png"
    chelsea((320, 240)).save(photo)
    upload_photo(page, photo)
    fill(page, "dream", {"max_size": "200", "octaves": "2", "steps": "400"})
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        page.click("#form-dream button[type=submit]")
    job = job_id_of(posted.value)
    wait_until(page, "/step/.test(document.getElementById('progress-stage').textContent)", timeout=60_000)
    assert page.locator(f'#queue-list [data-job-id="{job}"]').get_attribute("data-state") in ("queued", "running")
    page.click("#cancel")
    assert wait_state(page, job, "cancelled", timeout=30) == "cancelled"
    wait_until(page, "document.getElementById('stage-note').textContent.includes('Cancelled')")
    assert page.locator("#progress").is_hidden()
    state = page.evaluate(f"() => fetch('/api/jobs/{job}').then(r => r.json())")
    assert state["state"] == "cancelled"
    assert page.locator(f'#gallery-list [data-job-id="{job}"]').count() == 0
    assert watch.unexpected() == []


def test_the_servers_messages_appear_next_to_the_field_and_the_upload(studio, server, tmp_path):
    page, watch = studio
    photo = tmp_path / "cat.png"
    chelsea().save(photo)
    upload_photo(page, photo)
    fill(page, "dream", {"octaves": "0"})
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        page.click("#form-dream button[type=submit]")
    assert posted.value.status == 422
    detail = posted.value.json()["detail"]
    assert detail["field"] == "octaves"
    box = page.locator('#form-dream .field[data-field="octaves"] .field-error')
    box.wait_for()
    assert box.inner_text() == detail["message"] and "octaves" in detail["message"]
    assert page.get_attribute('#form-dream [name="octaves"]', "aria-invalid") == "true"
    # typing clears it; a value of the wrong kind is the server's to judge too
    page.fill('#form-dream [name="octaves"]', "two")
    assert box.is_hidden()
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        page.click("#form-dream button[type=submit]")
    assert posted.value.status == 422
    box.wait_for()  # the page shows the message once it has read the response, a moment after it arrived
    assert box.inner_text() == posted.value.json()["detail"]["message"]

    # a file that is not a picture: the server's message beside the upload
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n")
    with page.expect_response(lambda r: r.url.endswith("/api/uploads")) as uploaded:
        page.locator('#form-dream .drop[data-role="input"] input[type=file]').set_input_files(str(text))
    assert 400 <= uploaded.value.status < 500
    message = uploaded.value.json()["detail"]["message"]
    error = page.locator('#form-dream .drop[data-role="input"] .drop-error')
    error.wait_for()
    assert error.inner_text() == message and message
    # the server answered 422 three times, as asked; nothing else went wrong
    assert watch.unexpected("status of 422", "status of 415", "status of 400", "HTTP 422", "HTTP 415", "HTTP 400") == []
    assert any("422" in p or "415" in p or "400" in p for p in watch.problems)


def test_visualize_a_layers_channels_from_noise(studio, server):
    page, watch = studio
    page.click("#tab-visualize")
    form = page.locator("#form-visualize")
    choose(page, "visualize", "kind", "channels")
    assert form.locator('[name="target"]').get_attribute("list") == "layer-names"
    choose(page, "visualize", "kind", "class")
    assert form.locator('[name="target"]').get_attribute("list") == "class-names"
    choose(page, "visualize", "kind", "channels")
    fill(page, "visualize", {"target": "stage3.1", "grid": "4", "size": "64", "steps": "12"})
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        form.locator("button[type=submit]").click()
    job = job_id_of(posted.value)
    assert posted.value.request.post_data_json["settings"] == {
        "kind": "channels",
        "target": "stage3.1",
        "grid": 4,
        "size": 64,
        "steps": 12,
    }
    wait_state(page, job, "done", timeout=90)
    wait_until(
        page,
        f"document.getElementById('stage-image').getAttribute('src').includes('/api/jobs/{job}/files/')"
        " && document.getElementById('stage-image').naturalWidth > 0",
    )
    assert watch.unexpected() == []


def test_a_zoom_shows_its_frames_then_plays_and_continues(studio, server, tmp_path):
    page, watch = studio
    photo = tmp_path / "cat.png"
    chelsea().save(photo)
    upload_photo(page, photo)
    page.click("#tab-zoom")
    fill(page, "zoom", {"frames": "6", "max_size": "96", "octaves": "1", "steps": "2", "zoom": "1.1", "rotate": "2"})
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        page.click("#form-zoom button[type=submit]")
    job = job_id_of(posted.value)
    wait_state(page, job, "done", timeout=90)
    video = page.locator("#stage-video")
    video.wait_for()
    assert f"/api/jobs/{job}/files/" in video.get_attribute("src")
    assert page.locator('#caption a[data-download="MP4"]').count() == 1
    gif = page.locator('#caption a[data-download="GIF"]')  # the same frames as a GIF, for places that take no MP4
    assert gif.count() == 1 and gif.get_attribute("href").endswith(f"/api/jobs/{job}/files/zoom.gif")
    assert page.locator("#caption .caption-notes").inner_text().startswith("6 frames, ")  # what the CLI would print
    # continue it by 3 frames: a new zoom job from where this one ended
    page.fill('#caption input[name="continue-frames"]', "3")
    with page.expect_response(lambda r: "/continue" in r.url) as posted:
        page.click('#caption button[data-action="continue"]')
    more = job_id_of(posted.value)
    assert wait_state(page, more, ("done", "failed"), timeout=90) == "done", page.locator("#caption").inner_text()
    continued = page.evaluate(f"() => fetch('/api/jobs/{more}').then(r => r.json())")
    assert continued["parent"] == job and continued["settings"]["frames"] == 9
    assert watch.unexpected() == []


def test_what_each_layer_sees_picks_the_layer_and_the_report_opens_inside(studio, server, tmp_path):
    page, watch = studio
    photo = tmp_path / "cat.png"
    chelsea().save(photo)
    upload_photo(page, photo)
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        page.click("#see-layers")
    job = job_id_of(posted.value)
    assert posted.value.request.post_data_json["recipe"] == "probe"
    page.wait_for_selector("#ladder:not([hidden])")
    wait_state(page, job, "done", timeout=90)
    page.wait_for_selector("#ladder-row .rung img", timeout=10_000)
    rungs = page.eval_on_selector_all("#ladder-row .rung", "rungs => rungs.map(r => r.dataset.layer)")
    layers = [layer["name"] for layer in page.evaluate("() => fetch('/api/info').then(r => r.json())")["model"]["layers"]]
    assert len(rungs) >= 3 and rungs == sorted(rungs, key=layers.index), rungs  # shallow to deep
    wait_until(page, "[...document.querySelectorAll('#ladder-row .rung img')].every(i => i.complete && i.naturalWidth > 0)")
    page.locator(f'#ladder-row .rung[data-layer="{rungs[1]}"]').click()
    assert page.input_value('#form-dream [name="layer"]') == rungs[1]
    assert "on" in page.locator(f'#ladder-row .rung[data-layer="{rungs[1]}"]').get_attribute("class")
    # the report itself, inside the studio
    page.locator(f'#gallery-list .gallery-item[data-job-id="{job}"] .gallery-open').click()
    report = page.locator("#stage-report")
    report.wait_for()
    assert report.get_attribute("src").endswith("/index.html")
    frame = page.frame_locator("#stage-report")
    frame.locator("section.layer").first.wait_for(timeout=10_000)
    assert frame.locator("section.layer").count() == len(rungs)
    assert watch.unexpected() == []


def test_focusing_a_field_never_moves_the_form(studio, server):
    """A field's help shows while it has focus, without moving anything: a click that takes the focus away must
    land where it was aimed. (It once grew the help in place, so the form jumped up on blur and a click on the
    button below a long help hit the gap: no job was sent.)"""
    page, watch = studio
    moved = []
    for recipe in page.eval_on_selector_all("#forms form", "forms => forms.map(f => f.dataset.recipe)"):
        page.click(f"#tab-{recipe}")
        for summary in page.locator(f"#form-{recipe} details.more:not([open]) > summary").all():
            summary.click()
        moved += page.evaluate(
            """(recipe) => {
            const out = [], form = document.getElementById('form-' + recipe);
            // where every field and "More settings" sit in the form (the button itself is sticky)
            const parts = [...form.querySelectorAll('.field, .drop, details > summary')].filter(e => e.getClientRects().length);
            const y = () => parts.map(e => e.getBoundingClientRect().top - form.getBoundingClientRect().top).join();
            const before = y();
            for (const input of form.querySelectorAll('.field input[type=text], .field select')) {
                input.focus();
                const focused = y();
                input.blur();
                if (focused !== before || y() !== before) out.push([recipe, input.name]);
            }
            return out;
        }""",
            recipe,
        )
    assert moved == [], moved
    page.click("#tab-explain")
    page.focus("#f-explain-targets")
    help_box = page.evaluate(
        "() => getComputedStyle(document.querySelector('.field[data-field=\\'targets\\']'), '::after').content"
    )
    assert "top:N" in help_box  # the whole help, shown while the field has focus
    assert watch.unexpected() == []


def test_explain_a_photo_from_its_tab_and_hover_the_report(studio, server, tmp_path):
    page, watch = studio
    photo = tmp_path / "IMG_20261206_cat_on_the_sofa_in_the_afternoon_light.png"
    chelsea().save(photo)
    page.click("#tab-explain")
    form = page.locator("#form-explain")
    form.locator('.drop[data-role="input"] input[type=file]').set_input_files(str(photo))
    page.wait_for_selector('#form-explain .drop[data-role="input"].filled .drop-thumb img', timeout=20_000)
    # a long file name is cut short inside its box, not spilt over the panel
    spill = page.evaluate("""() => { const zone = document.querySelector('#form-explain .drop[data-role="input"]');
        return Math.max(...[...zone.querySelectorAll('*')].map(e => e.getBoundingClientRect().right))
            - zone.getBoundingClientRect().right; }""")
    assert spill <= 0, spill
    fill(
        page,
        "explain",
        {
            "groups": "3",
            "steps": "8",
            "size": "96",
            "cell_size": "32",
            "channel_size": "32",
            "top_channels": "2",
            "integrated_steps": "4",
        },
    )
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        form.locator("button[type=submit]").click()
    job = job_id_of(posted.value)
    sent = posted.value.request.post_data_json
    assert sent["recipe"] == "explain" and sent["settings"]["groups"] == 3 and set(sent["inputs"]) == {"input"}
    assert wait_state(page, job, ("done", "failed"), timeout=300) == "done", page.locator("#caption").inner_text()
    # the page opens inside the studio, and a cell answers a hover with its picture, channels and attribution
    report = page.locator("#stage-report")
    report.wait_for(timeout=10_000)
    assert report.get_attribute("src").endswith("/index.html")
    frame = page.frame_locator("#stage-report")
    cell = frame.locator('.cell[data-row="1"][data-col="2"]')
    cell.wait_for(timeout=10_000)
    cell.hover()
    panel = frame.locator("#cell-panel")
    panel.wait_for()
    assert panel.get_attribute("data-row") == "1" and panel.get_attribute("data-col") == "2"
    assert frame.locator("#cell-panel img").count() >= 1
    # in the gallery, the explanation shows its neuron groups' map
    thumb = page.locator(f'#gallery-list [data-job-id="{job}"] .thumb img')
    assert thumb.get_attribute("src").endswith("/groups.png")
    assert watch.unexpected() == []
