"""The pipeline report as a reader sees it: rendered by headless Chromium through selenium.

Needs the ``chromium`` and ``chromedriver`` programs (Debian: ``chromium`` and
``chromium-driver``; ``scripts/test.sh`` installs them when it can) and
``selenium`` (the ``dev`` extras); skipped with the reason when any is missing.
"""

import importlib.util
import shutil
from pathlib import Path

import pytest

from alignkit.pipeline.report import write_report

_spec = importlib.util.spec_from_file_location(
    "report_fixtures", Path(__file__).parents[1] / "unit" / "pipeline" / "report_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _program(names: tuple[str, ...], what: str) -> str:
    for name in names:
        if found := shutil.which(name):
            return found
    pytest.skip(f"{what} not found on PATH (looked for {', '.join(names)}); on Debian: "
                "apt-get install chromium chromium-driver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = _program(BROWSERS, "Chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(argument)
    # An explicit driver path keeps selenium from looking for one on the network.
    service = webdriver.ChromeService(executable_path=_program(("chromedriver",), "chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def test_the_report_renders_every_section_image_and_table(tmp_path, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    report = write_report(fixtures.build_pipeline(tmp_path / "demo"))
    browser.get(report.as_uri())

    for section_id in fixtures.SECTIONS:
        section = browser.find_element(By.ID, section_id)
        assert section.is_displayed(), section_id
        assert section.find_element(By.TAG_NAME, "h2").text
        images = section.find_elements(By.TAG_NAME, "img")
        assert len(images) == fixtures.IMAGES.get(section_id, 0), section_id
        for image in images:
            width = browser.execute_script(
                "return arguments[0].complete ? arguments[0].naturalWidth : 0;", image)
            assert width > 0, image.get_attribute("alt")
            assert image.is_displayed() and image.size["width"] > 0

    tables = browser.find_elements(By.TAG_NAME, "table")
    assert len(tables) >= 14
    for table in tables:
        assert table.find_elements(By.CSS_SELECTOR, "tbody tr")
    # The untrusted response is shown as text and never runs.
    assert fixtures.SCRIPT in browser.find_element(By.ID, "samples").text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check)
    # Nothing was fetched: the page's only resources are inside it.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
