"""The asset page and the backfill dialog in real Chromium, timed (for `partition_budget --ui`).

Needs what the project does not install: `pip install selenium` in the venv and
Debian's `chromium` and `chromium-driver`. Times, after a warm-up load of the app:
opening the asset's Partitions view until its partition count shows, opening the
Materialize (backfill) dialog, and selecting every partition ("All" on both
dimensions) until the dialog shows the count.
"""

import re
import tempfile
import time

CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]
TIMEOUT = 300


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def _until(driver, pattern: str) -> re.Match:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    found: list[re.Match] = []

    def seen(d) -> bool:
        match = re.search(pattern, d.find_element(By.TAG_NAME, "body").text)
        found[:] = [match] if match else []
        return bool(match)

    WebDriverWait(driver, TIMEOUT, 0.05).until(seen)
    return found[0]


def _dismiss_overlays(driver) -> None:
    """Dagster's first-visit "community" modal covers the page."""
    from selenium.webdriver.common.by import By

    for _ in range(40):
        skip = driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']")
        if skip:
            driver.execute_script("arguments[0].click()", skip[0])
        elif not driver.find_elements(By.CSS_SELECTOR, ".bp5-overlay-backdrop"):
            return
        time.sleep(0.25)


def time_asset_page(base_url: str, asset: str) -> dict[str, float | str]:
    """Seconds to the Partitions view, to the backfill dialog, and to selecting every partition."""
    from selenium.webdriver.common.by import By

    driver = _browser()
    try:
        driver.get(f"{base_url}/overview")
        time.sleep(3)
        started = time.perf_counter()
        driver.get(f"{base_url}/assets/{asset}?view=partitions")
        _until(driver, r"[0-9,]+ Partitions[\s\S]*Missing \(")
        page = time.perf_counter() - started
        _dismiss_overlays(driver)
        button = next(
            b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip().startswith("Materialize")
        )
        started = time.perf_counter()
        driver.execute_script("arguments[0].click()", button)
        _until(driver, r"Launch backfill")
        dialog = time.perf_counter() - started
        started = time.perf_counter()
        for all_button in driver.find_elements(By.XPATH, "//*[@role='dialog']//button[normalize-space()='All']"):
            driver.execute_script("arguments[0].click()", all_button)
        selected = _until(driver, r"Partition selection\s*([0-9,]{4,}) partitions").group(1)
        return {"page_s": page, "dialog_s": dialog, "select_all_s": time.perf_counter() - started, "selected": selected}
    finally:
        driver.quit()
