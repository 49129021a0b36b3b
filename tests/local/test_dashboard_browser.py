"""The dashboard in a real browser: Debian's Chromium, driven by Selenium, on a real local NVCF.

One ``nvcf-helpers local`` (with ``--api-key``, so the login form is part of
the path) runs the contract server for the whole module; one headless
Chromium at a laptop's 1366x768 logs in through the form and watches it.
The tests follow one story in order: log in, see the function ACTIVE, watch
a running invocation's progress bar reach 100, open its log lines, see the
charts fill, filter the Logs tab, download the result, read the deployment.

Screenshots land in ``build/screenshots/`` (a failed wait adds one named
after what it waited for); with ``UPDATE_README_SCREENSHOT=1`` the one of
the charts is also written to ``docs/images/dashboard.png``, the README's
picture (not on every run: a test run leaves the checkout as it was). Without Chromium, its
driver or Selenium the tests say how to install them and skip; with
``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import pytest
from local_support import API_KEY, Raw, contract_command, contract_spec

from nvcf_helpers import names
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

REPOSITORY = Path(__file__).resolve().parents[2]
DASHBOARD = REPOSITORY / "nvcf_helpers" / "local" / "dashboard"
SCREENSHOTS = REPOSITORY / "build" / "screenshots"
README_IMAGE = REPOSITORY / "docs" / "images" / "dashboard.png"
#: A laptop's screen: the page must be readable at this size.
VIEWPORT = {"width": 1366, "height": 768}
HOW_TO_INSTALL = (
    "as root: apt-get install -y chromium chromium-driver, and selenium into the "
    "virtualenv with .venv/bin/pip install -e '.[dev]' (make test does both where it can)"
)

T = TypeVar("T")


def _unavailable(what: str) -> NoReturn:
    """Skip for a developer without a browser; fail in CI, where the browser must be there."""
    message = f"the dashboard's browser tests need {what}: {HOW_TO_INSTALL}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _programs() -> tuple[str, str]:
    """Chromium and its driver, from the system's packages."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(
            name for name, path in (("chromium", browser), ("chromedriver", driver)) if path is None
        )
        _unavailable(f"{missing} on PATH")
    return browser, driver


def _shoot(browser: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def _until(
    browser: WebDriver, what: str, condition: Callable[[WebDriver], T], timeout: float = 20.0
) -> T:
    """Wait for ``condition`` to give a truthy value; on time-out, a screenshot and the page."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        browser,
        timeout,
        poll_frequency=0.1,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    try:
        return wait.until(condition)
    except TimeoutException:
        shot = _shoot(browser, "failed-" + re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-"))
        text = browser.find_element("tag name", "body").text
        raise AssertionError(
            f"the page did not show {what} within {timeout:g} s (screenshot: {shot}); "
            f"it showed:\n{text[:3000]}"
        ) from None


def _css(browser: WebDriver | WebElement, selector: str) -> WebElement:
    return browser.find_element("css selector", selector)


def _all(browser: WebDriver | WebElement, selector: str) -> list[WebElement]:
    return browser.find_elements("css selector", selector)


# -- fixtures: one local NVCF, one browser, one story --------------------------------------------


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """``nvcf-helpers local --api-key`` in front of the contract server, 2 slots."""
    port = free_port()
    log = tmp_path_factory.mktemp("dashboard-local") / "output.log"
    with LocalNvcf(
        contract_spec(port),
        contract_command(port),
        api_key=API_KEY,
        max_concurrency=2,
        output=log,
    ) as nvcf:
        yield nvcf


@pytest.fixture(scope="module")
def raw(local: LocalNvcf) -> Raw:
    return Raw(local, API_KEY)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The file the running invocation waits for; created at the end so nothing hangs."""
    path = tmp_path_factory.mktemp("dashboard-gate") / "gate"
    yield path
    path.touch()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """A headless Chromium with a 1366x768 viewport, driven through Debian's chromedriver."""
    chromium, chromedriver = _programs()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("the selenium package")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={VIEWPORT['width']},{VIEWPORT['height']}",
        "--lang=en-US",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager (which would download one) never runs.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {**VIEWPORT, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(browser: WebDriver, local: LocalNvcf) -> WebDriver:
    """The dashboard, logged in through its form with the API key."""
    browser.get(local.base_url + "/")
    key = _until(browser, "the login form's key field", lambda b: _css(b, "input[type=password]"))
    _shoot(browser, "01-login")
    key.send_keys(API_KEY)
    key.submit()
    _until(browser, "the dashboard after logging in", lambda b: _css(b, "#functions"))
    # Reading the console empties it: the form's own 401 is expected, anything else is not.
    before = [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "401 (Unauthorized)" not in entry["message"]
    ]
    assert not before, before
    return browser


@pytest.fixture(scope="module")
def running(raw: Raw, gate: Path) -> str:
    """An invocation that reported progress up to 100 and waits on ``gate``: its request id."""
    reply = raw.invoke(
        {
            "progress": [
                [20, {"stage": "reading", "words": 0}],
                [60, {"stage": "counting", "words": 1200}],
                [100, {"stage": "writing", "words": 2041}],
            ],
            "large": {"name": "words.txt", "bytes": 2048},
            "wait_for": str(gate),
        },
        {names.POLL_SECONDS: "1"},
    )
    assert reply.status == 202, reply.body
    return reply.headers[names.REQUEST_ID]


def _chart_total(chart: str, least: float) -> Callable[[WebDriver], bool]:
    """Whether chart ``chart`` adds up to at least ``least`` (points, for inference time)."""

    def reached(browser: WebDriver) -> bool:
        total = _css(browser, f"svg[data-chart={chart}]").get_attribute("data-total")
        return float(total or 0) >= least

    return reached


def _row(page: WebDriver, request_id: str) -> WebElement:
    return _css(page, f'#invocations tr[data-request-id="{request_id}"]')


# -- the story -----------------------------------------------------------------------------------


@pytest.mark.integration
class TestDashboard:
    """What a user of the local NVCF sees in a browser, step by step."""

    def test_the_key_travels_in_an_httponly_cookie_never_in_the_url(self, page: WebDriver) -> None:
        """After the form, the key is in the nvcf_local_key cookie, HttpOnly, not in the URL."""
        cookie = page.get_cookie("nvcf_local_key")
        assert cookie is not None, page.get_cookies()
        assert cookie["httpOnly"] is True
        assert API_KEY not in page.current_url
        assert page.execute_script("return document.cookie") == ""

    def test_the_function_is_listed_active(self, page: WebDriver, local: LocalNvcf) -> None:
        """The sidebar lists the version ACTIVE with its instance; the head repeats it."""
        version = f'#functions [data-version-id="{local.version_id}"]'
        _until(
            page,
            "the version ACTIVE in the sidebar",
            lambda b: _css(b, version).get_attribute("data-status") == "ACTIVE",
        )
        _until(
            page,
            "the selected version ACTIVE",
            lambda b: _css(b, "#version-status").get_attribute("data-status") == "ACTIVE",
        )
        assert _css(page, "#version-function-id").text == local.function_id
        assert "instances 1/1" in _css(page, version).text
        assert _css(page, "#tile-instances").text == "1 / 1 / 1"
        _shoot(page, "02-active")

    def test_a_running_invocation_shows_its_progress(self, page: WebDriver, running: str) -> None:
        """The progress file's updates reach the bar: 100 while the request still runs."""
        bar = f'#invocations tr[data-request-id="{running}"] [data-role=progress]'
        _until(
            page,
            "the progress bar at 100",
            lambda b: _css(b, bar).get_attribute("aria-valuenow") == "100",
        )
        row = _row(page, running)
        assert row.get_attribute("data-status") == "running"
        assert "2041" in _css(row, "[data-role=partial]").get_attribute("title")
        assert _css(row, "[data-role=progress]").text == "100 %"
        _shoot(page, "03-progress")

    def test_its_log_lines_open_on_click(self, page: WebDriver, running: str) -> None:
        """Its Logs button shows the lines the container wrote for that request, and no other."""
        _css(_row(page, running), "[data-role=show-logs]").click()
        lines = f'pre[data-role=request-logs][data-request-id="{running}"] [data-log-id]'
        found = _until(page, "the request's log lines", lambda b: _all(b, lines))
        texts = [line.text for line in found]
        assert any("POST /infer: large, progress, wait_for" in text for text in texts), texts
        assert all(running in text for text in texts), texts
        _shoot(page, "04-request-logs")

    def test_the_charts_show_the_invocations(self, page: WebDriver, raw: Raw, running: str) -> None:
        """Within a sample or two (5 s each), the charts count successes and a failure."""
        from selenium.webdriver.common.action_chains import ActionChains

        assert raw.invoke({"sleep": 0.3}).status == 200
        assert raw.invoke({"status": 500, "error": "out of words"}).status == 500
        for chart in ("invocations", "failures", "inferenceSeconds"):
            _until(page, f"data in the {chart} chart", _chart_total(chart, 1), timeout=30.0)
        # More, a sample later, so that the picture shows the charts moving.
        for seconds in (0.4, 0.8, 1.2):
            assert raw.invoke({"sleep": seconds}).status == 200
        _until(page, "5 invocations in the chart", _chart_total("invocations", 5), timeout=30.0)
        assert _all(page, "svg[data-chart=invocations] rect.bar")
        assert _css(page, "#tile-failures").text == "1"
        assert _css(page, "#tile-success").text == "80.0 %"
        # A running invocation at 100 %, its log lines, charts with data: the README's picture,
        # with the pointer off the buttons it clicked.
        ActionChains(page).move_to_element(_css(page, "h1")).perform()
        shot = _shoot(page, "05-dashboard")
        if os.environ.get("UPDATE_README_SCREENSHOT") == "1":
            README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, README_IMAGE)

    def test_the_logs_tab_filters_by_request_and_tails(
        self, page: WebDriver, raw: Raw, running: str
    ) -> None:
        """Filtered by request id, rows and the window view show only that request's lines."""
        from selenium.webdriver.common.keys import Keys

        _css(page, "#tab-logs").click()
        _until(page, "log rows", lambda b: _all(b, "#log-rows tr[data-log-id]"))
        field = _css(page, "#log-request")
        field.clear()
        field.send_keys(running)
        _until(
            page,
            "only the running request's rows",
            lambda b: (
                (rows := _all(b, "#log-rows tr[data-log-id]"))
                and all(running[:8] in row.text for row in rows)
            ),
        )
        _shoot(page, "06-logs-rows")
        _css(page, "#log-view-window").click()
        window = _css(page, "#log-window")
        assert window.is_displayed()
        assert "POST /infer: large, progress, wait_for" in window.text
        assert all(running in line for line in window.text.splitlines()), window.text
        # The live tail: another request's new line appears once the filter is cleared.
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.BACKSPACE)
        _css(page, "#log-view-rows").click()
        assert raw.invoke({"tail_me": True}).status == 200
        _until(
            page,
            "the new line in the live tail",
            lambda b: "POST /infer: tail_me" in _css(b, "#log-rows").text,
        )
        _css(page, "#log-view-window").click()
        _shoot(page, "07-logs-window")
        _css(page, "#log-view-rows").click()

    def test_the_result_downloads_once_it_finished(
        self, page: WebDriver, running: str, gate: Path
    ) -> None:
        """Released, the invocation is fulfilled and its row links the result's zip."""
        gate.touch()
        _css(page, "#tab-invocations").click()
        link = _until(
            page,
            "the result's download link",
            lambda b: _css(_row(b, running), "a[data-role=result]"),
        )
        row = _row(page, running)
        assert row.get_attribute("data-status") == "fulfilled"
        _shoot(page, "08-fulfilled")
        with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as answer:
            archive = zipfile.ZipFile(BytesIO(answer.read()))
        assert any(name.endswith("words.txt") for name in archive.namelist()), archive.namelist()

    def test_the_deployment_tab_shows_spec_and_instances(
        self, page: WebDriver, local: LocalNvcf
    ) -> None:
        """The deployment's specification, its instance taking work, and the definition."""
        _css(page, "#tab-deployment").click()
        specs = _until(
            page, "the deployment specification", lambda b: _all(b, "#deployment-specs tr")
        )
        cells = [cell.text for cell in _all(specs[0], "td")]
        assert cells[2:4] == ["1", "1"], cells
        (instance,) = _all(page, "#deployment-instances tr")
        assert instance.get_attribute("data-status") == "ACTIVE"
        assert "/infer" in _css(page, "#definition").text
        _shoot(page, "09-deployment")

    def test_the_page_raised_no_script_error(self, page: WebDriver) -> None:
        """Nothing went wrong in the page's JavaScript along the way."""
        errors = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, json.dumps(errors, indent=1)

    def test_a_lost_key_sends_back_to_the_form(self, page: WebDriver) -> None:
        """Without the cookie the data answers 401: the page says so and links to the form."""
        page.delete_cookie("nvcf_local_key")
        status = _until(
            page,
            "the request to log in again",
            lambda b: (
                (node := _css(b, "#connection")).get_attribute("data-state") == "login" and node
            ),
        )
        _shoot(page, "10-logged-out")
        _css(status, "a").click()
        _until(page, "the login form again", lambda b: _css(b, "input[type=password]"))


class TestPackaging:
    """The dashboard's files travel with the package."""

    def test_the_dashboard_ships_in_the_wheel(self, tmp_path: Path) -> None:
        """Every file of the dashboard folder is in the wheel, beside the local NVCF."""
        import subprocess
        import sys

        pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        subprocess.run(
            [*pip, "-w", str(tmp_path), str(REPOSITORY)],
            check=True,
            capture_output=True,
        )
        (wheel,) = tmp_path.glob("nvcf_helpers-*.whl")
        shipped = set(zipfile.ZipFile(wheel).namelist())
        expected = {
            f"nvcf_helpers/local/dashboard/{path.name}"
            for path in DASHBOARD.iterdir()
            if path.is_file()
        }
        assert {"nvcf_helpers/local/dashboard/index.html"} <= expected <= shipped
