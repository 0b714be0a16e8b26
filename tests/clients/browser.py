#!/usr/bin/env python3
"""Opens a static site in headless Chromium and checks that it really rendered.

Used by tests/clients/website.sh: the site (index.html, style.css, app.js, logo.png) is
served by Strata's website endpoint through the edge over HTTPS, under a hostname the
browser maps to 127.0.0.1. Checks, in the browser itself:
  - the document title;
  - a computed style that only style.css sets (so the stylesheet loaded);
  - the image's natural width (so the PNG loaded and decoded);
  - the text app.js wrote after a cross-origin fetch() to the S3 REST endpoint, which
    works only when the bucket's CORS rules allow the site's origin;
and saves a screenshot. Prints one line per check; exits non-zero on any failure.

Usage: browser.py URL HOST_MAP SCREENSHOT
  URL        e.g. https://www.example.test:8443/
  HOST_MAP   Chromium host resolver rules, e.g. "MAP www.example.test 127.0.0.1"
  SCREENSHOT path of the PNG to write
"""

import shutil
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def find(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    sys.exit(f"none of {names} found: apt-get install -y chromium chromium-driver")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    url, host_map, screenshot = sys.argv[1:]
    options = webdriver.ChromeOptions()
    options.binary_location = find("chromium", "chromium-browser")
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1024,768",
        # The edge's certificate is the self-signed one `strata serve` generates.
        "--ignore-certificate-errors",
        f"--host-resolver-rules={host_map}",
    ):
        options.add_argument(arg)
    # The driver comes from Debian's chromium-driver: no download (Selenium Manager) needed.
    service = Service(executable_path=find("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    failures = 0

    def check(name, ok, detail):
        nonlocal failures
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        failures += 0 if ok else 1

    try:
        driver.set_page_load_timeout(30)
        driver.get(url)
        # app.js fills #fetched asynchronously; wait (bounded) for it.
        deadline = time.monotonic() + 15
        fetched = ""
        while time.monotonic() < deadline:
            fetched = driver.find_element(By.ID, "fetched").text
            if fetched and fetched != "pending":
                break
            time.sleep(0.2)
        check("title", driver.title == "Strata static site", repr(driver.title))
        color = driver.execute_script(
            "return getComputedStyle(document.querySelector('h1')).color"
        )
        check("stylesheet applied", color == "rgb(12, 34, 56)", color)
        width = driver.execute_script(
            "const i = document.getElementById('logo'); return i.complete ? i.naturalWidth : -1"
        )
        check("image decoded", width == 64, f"naturalWidth={width}")
        check("CORS fetch to the REST endpoint", fetched == "hello from the bucket", repr(fetched))
        driver.save_screenshot(screenshot)
        print(f"screenshot: {screenshot}")
    finally:
        driver.quit()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
