"""A headless Chromium for the tests that look at a page as its reader would."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def chrome_paths() -> tuple[str, str] | None:
    """The browser and its driver, when both are installed."""
    browser = next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


needs_chrome = pytest.mark.skipif(chrome_paths() is None, reason="needs chromium and chromedriver")


@contextmanager
def headless_chrome(*, window: str = "1400,1000") -> Iterator[Any]:
    """A Chrome session in English, its console log kept ('browser' logs), quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    paths = chrome_paths()
    assert paths is not None, "needs chromium and chromedriver"
    options = Options()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={window}", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()
