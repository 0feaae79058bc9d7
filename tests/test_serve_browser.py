"""`scenegrep serve` in a real browser: Debian's chromium driven by chromium-driver (Selenium).

Needs `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
these tests are skipped on a developer machine and fail in CI (CI set).
Screenshots go to test-results/serve/ (or $SCENEGREP_TEST_RESULTS/serve/).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_VIDEOS
from serve_helpers import HOSTILE_EPISODE, UNPLAYABLE_EPISODE, mini_index

WAIT_S = 30


def screenshots() -> Path:
    folder = Path(os.environ.get("SCENEGREP_TEST_RESULTS", REPO / "test-results")) / "serve"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def need(*names: str) -> list[str]:
    found = [shutil.which(name) for name in names]
    if all(found):
        return found
    missing = " and ".join(n for n, f in zip(names, found) if not f)
    if os.environ.get("CI"):
        pytest.fail(f"{missing} not installed but CI is set: .ci/run must install them (apt-get install chromium chromium-driver)")
    pytest.skip(f"{missing} not installed: `sudo apt-get install chromium chromium-driver` to run the browser tests")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real app under uvicorn on a free loopback port, over the mini index."""
    import uvicorn

    from scenegrep.pipeline.index_access import Location
    from scenegrep.serve.app import create_app
    from scenegrep.serve.engine import Engine

    need("chromium", "chromedriver")
    engine = Engine(Location.of(str(mini_index(tmp_path_factory)), None))
    engine.warm_up()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(engine, allow_open=True), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not running.started:  # was 10 s then on regardless, to fail later as "status never loaded"
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One headless chromium for the module (starting one takes seconds); `browser` gives each test a fresh page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = need("chromium", "chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--autoplay-policy=no-user-gesture-required", "--window-size=1400,900", "--mute-audio"):
        options.add_argument(argument)
    downloads = tmp_path_factory.mktemp("downloads")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.downloads = downloads
    yield chrome
    chrome.quit()


@pytest.fixture
def browser(chromium, server):
    """The page freshly loaded (nothing of an earlier test's script state left), and no earlier downloads."""
    for path in chromium.downloads.iterdir():
        path.unlink()
    chromium.get(server)
    return chromium


def wait(browser, condition, what: str, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda _: condition(), message=what)


def search(browser, text: str = "", **filters):
    from selenium.webdriver.common.by import By

    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys(text)
    if filters:
        browser.execute_script("document.getElementById('filters').open = true")
        for name, value in filters.items():
            field = browser.find_element(By.ID, name)
            field.clear()
            field.send_keys(value)
    browser.execute_script("window.searched = false; document.getElementById('results').replaceChildren()")
    browser.find_element(By.ID, "go").click()
    wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, ".card"), "no result cards appeared")
    return browser.find_elements(By.CSS_SELECTOR, ".card")


def test_a_query_shows_the_right_clip_and_plays_it_from_its_start_to_its_end(browser, annotations):
    from selenium.webdriver.common.by import By

    wait(browser, lambda: "frames" in browser.find_element(By.ID, "status").text, "status never loaded")
    cards = search(browser, "a green triangle on a white background")
    # episode_01's green triangle fills 9-15 s: the grid clip of samples 10, 12, 14 s (10-16 s)
    # snaps to its shot, as `scenegrep search` does.
    assert cards[0].find_element(By.CSS_SELECTOR, ".episode").text == "#1 episode_01"
    assert cards[0].find_element(By.CSS_SELECTOR, ".tc").text == "00:00:09.000 – 00:00:15.000"
    wait(browser, lambda: browser.execute_script(
        "return [...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth > 0)"),
        "thumbnails did not load")
    browser.save_screenshot(str(screenshots() / "results.png"))
    browser.execute_script("""
        const v = document.getElementById('video');
        window.firstPlaying = null;
        v.addEventListener('playing', () => { if (window.firstPlaying === null) window.firstPlaying = v.currentTime; });""")
    cards[0].click()
    wait(browser, lambda: browser.execute_script("return window.firstPlaying !== null"), "the video never played")
    assert abs(browser.execute_script("return window.firstPlaying") - 9.0) <= 0.2
    time.sleep(1.0)
    browser.save_screenshot(str(screenshots() / "playing.png"))
    # It stops at the clip's end (15 s), not at the video's (24 s).
    wait(browser, lambda: browser.execute_script("return document.getElementById('video').paused"), "never stopped", 20)
    stopped = browser.execute_script("return document.getElementById('video').currentTime")
    assert 15.0 <= stopped < 15.6


def test_keys_move_between_results_and_play_or_pause(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    cards = search(browser, "a shape", k="6")
    assert len(cards) >= 3
    body = browser.find_element(By.TAG_NAME, "body")
    cards[0].send_keys(Keys.ARROW_RIGHT)
    cards[1].send_keys(Keys.ARROW_RIGHT)
    selected = browser.find_elements(By.CSS_SELECTOR, ".card.selected")
    assert [c.get_attribute("data-rank") for c in selected] == ["3"]
    selected[0].send_keys(Keys.ENTER)
    wait(browser, lambda: browser.execute_script("const v = document.getElementById('video'); return !v.paused && v.currentTime > 0"),
         "Enter did not play")
    assert "#3 " in browser.find_element(By.ID, "now").text
    selected[0].send_keys(" ")
    wait(browser, lambda: browser.execute_script("return document.getElementById('video').paused"), "Space did not pause")
    assert body.is_displayed()


def test_a_picture_query_by_upload(browser, tmp_path):
    import av
    from selenium.webdriver.common.by import By

    with av.open(str(SAMPLE_VIDEOS / "episode_01.mp4")) as container:
        stream = container.streams.video[0]
        frame = next(f for f in container.decode(stream) if f.pts * stream.time_base >= 17)
        frame.to_image().save(tmp_path / "still.png")
    browser.find_element(By.ID, "image").send_keys(str(tmp_path / "still.png"))
    wait(browser, lambda: browser.find_element(By.ID, "drop-preview").is_displayed(), "no preview of the picture")
    cards = search(browser, "")
    assert cards[0].find_element(By.CSS_SELECTOR, ".episode").text == "#1 episode_01"
    start, end = cards[0].find_element(By.CSS_SELECTOR, ".tc").text.split(" – ")
    assert start <= "00:00:17.000" < end
    browser.save_screenshot(str(screenshots() / "picture-query.png"))


def test_an_export_download_is_a_file_the_cli_reads(browser):
    import opentimelineio as otio
    from selenium.webdriver.common.by import By

    cards = search(browser, "a green triangle on a white background", episode="episode_01", k="3")
    browser.find_element(By.CSS_SELECTOR, "button[data-format=edl]").click()
    target = browser.downloads / "scenegrep-results.edl"
    wait(browser, target.exists, "the EDL was not downloaded")
    timeline = otio.adapters.read_from_file(str(target), "cmx_3600", rate=24)
    starts = [otio.opentime.to_timecode(c.source_range.start_time, 24) for c in timeline.tracks[0].find_clips()]
    assert len(starts) == len(cards) and starts[0] == "00:00:09:00"


def test_an_export_holds_the_clips_shown_even_after_the_box_is_edited(browser):
    import opentimelineio as otio
    from selenium.webdriver.common.by import By

    search(browser, "a green triangle on a white background", episode="episode_01", k="3")
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys("a red circle bouncing on a blue background")  # typed, not searched: the page still shows the triangle
    browser.find_element(By.CSS_SELECTOR, "button[data-format=edl]").click()
    target = browser.downloads / "scenegrep-results.edl"
    wait(browser, target.exists, "the EDL was not downloaded")
    timeline = otio.adapters.read_from_file(str(target), "cmx_3600", rate=24)
    assert otio.opentime.to_timecode(timeline.tracks[0].find_clips()[0].source_range.start_time, 24) == "00:00:09:00"


def test_each_search_refreshes_the_index_status(browser):
    from selenium.webdriver.common.by import By

    # The status line polls only while an index run writes; one started after the page opened
    # must still show up: a search asks for the status again.
    wait(browser, lambda: "frames" in browser.find_element(By.ID, "status").text, "no status")
    browser.execute_script("document.getElementById('status').textContent = 'stale'")
    search(browser, "a shape", k="3")
    wait(browser, lambda: "frames" in browser.find_element(By.ID, "status").text, "the status was not refreshed")


def test_a_server_that_stopped_answering_is_said_on_the_page(browser):
    from selenium.webdriver.common.by import By

    search(browser, "a shape", k="3")
    browser.execute_script("window.fetch = () => Promise.reject(new TypeError('Failed to fetch'))")  # as when it stops
    browser.find_element(By.ID, "go").click()
    message = browser.find_element(By.ID, "message")
    wait(browser, message.is_displayed, "nothing said when the server did not answer")
    assert "did not answer" in message.text and "scenegrep serve" in message.text


def test_a_video_the_browser_cannot_play_says_so_and_offers_the_desktop_player(browser):
    from selenium.webdriver.common.by import By

    cards = search(browser, "a shape", episode=UNPLAYABLE_EPISODE)
    cards[0].click()
    message = browser.find_element(By.ID, "player-message")
    wait(browser, message.is_displayed, "no message for an unplayable video")
    assert "cannot play" in message.text or "could not be played" in message.text
    assert browser.find_element(By.ID, "open-desktop").is_displayed()
    browser.save_screenshot(str(screenshots() / "cannot-play.png"))


def test_hostile_names_are_shown_as_text(browser):
    from selenium.webdriver.common.by import By

    cards = search(browser, "a shape", episode="<img*")
    assert cards[0].find_element(By.CSS_SELECTOR, ".episode").text == f"#1 {HOSTILE_EPISODE}"
    cards[0].click()
    time.sleep(0.5)
    assert browser.execute_script("return window.pwned === undefined")
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']")
