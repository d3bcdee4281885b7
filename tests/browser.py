"""Headless Chromium through Selenium for report.html: Debian's ``chromium`` and
``chromium-driver`` (.ci/run installs them). Used by tests/integration/test_browser_report.py, the report
benchmark and the screenshot script. A missing browser fails; it never skips."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def driver(width: int = 1400, height: int = 1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    chromedriver = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    if not binary or not chromedriver:
        raise RuntimeError(
            "chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def open_report(browser, page: Path, timeout: float = 30.0) -> dict:
    """Load the page from disk and wait until its charts are drawn and its table is filled;
    returns ``window.reportReady``."""
    browser.get(page.resolve().as_uri())
    deadline = time.monotonic() + timeout
    ready = None
    while time.monotonic() < deadline:
        ready = browser.execute_script("return window.reportReady || null")
        if (
            ready
            and ready.get("table")
            and (
                ready.get("charts", 0) + ready.get("chartErrors", 0)
                >= ready.get("chartsExpected", 1 << 30)
            )
        ):
            return ready
        time.sleep(0.05)
    raise AssertionError(f"report did not finish drawing within {timeout} s: {ready}")


def severe(browser) -> list[dict]:
    """The browser's console entries of level SEVERE (errors, CSP violations, failed loads)."""
    return [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
