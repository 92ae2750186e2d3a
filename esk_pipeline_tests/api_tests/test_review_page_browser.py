"""A whole review session on the reviewer page, by keyboard alone, in headless Chromium.

The API runs under a real uvicorn on a free loopback port with a temporary data folder and a
seeded review store; Playwright drives Debian's `chromium` (its own browser download does not
work offline). A screenshot goes to $ESK_TEST_ARTIFACTS (or the test's tmp folder).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from esk_pipeline.api import create_app
from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig, ReviewStatus
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.api_tests.conftest import TAXONOMY_PATH, TOKENS, auth, seed_review

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    """Debian's chromium, installed with apt-get when missing and we may (root, apt present)."""
    found = _find_chromium()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "chromium"],
        ):
            subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
        found = _find_chromium()
    if found is None:
        pytest.skip(
            "headless Chromium not found and could not be installed: "
            "install Debian's 'chromium' package (apt-get install chromium)"
        )
    return found


def _find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(settings) -> Iterator[str]:
    """uvicorn serving the app in a thread; yields its base URL."""
    seed_review(settings, 6)
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


def _log_in_by_keyboard(page, server: str, reviewer: str) -> None:
    """Open the page and log in by typing the token into the autofocused field.

    Chromium applies `autofocus` on a rendering update that may come after the load event, so
    the test waits for the focus instead of typing into whatever has it at that moment."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(server)
    page.wait_for_function("document.activeElement && document.activeElement.id === 'token-input'")
    page.keyboard.type(TOKENS[reviewer])
    page.keyboard.press("Enter")
    try:
        page.wait_for_selector("#item-card:not([hidden])", timeout=15_000)
    except PlaywrightTimeout as error:  # say what the page shows instead of the card
        shown = {key: page.text_content(key) for key in ("#login-error", "#error", "#status")}
        raise AssertionError(f"no item card after logging in as {reviewer}: {shown}") from error


def _first_match(query: str) -> str:
    """The first domain the page's search lists for `query` (the same rule as review.js)."""

    def norm(text: str) -> str:
        return text.lower().replace("ё", "е")

    for domain in Taxonomy.load(TAXONOMY_PATH).domains:
        if any(
            norm(query) in norm(field) for field in (domain.id, domain.name, domain.description)
        ):
            return domain.id
    raise AssertionError(f"no domain matches {query!r}")


def test_keyboard_review_session(settings, server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    decisions: dict[str, str] = {}  # item id -> domain the page should have submitted

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        _log_in_by_keyboard(page, server, "alice")
        assert page.text_content("#reviewer-name") == "alice"

        def current() -> tuple[str, list[str]]:
            item_id = page.get_attribute("#item-card", "data-item-id")
            options = page.eval_on_selector_all(
                "#domain-list li", "els => els.map(e => e.dataset.domain)"
            )
            return item_id, options

        def wait_for_new_item(previous: str) -> None:
            page.wait_for_function(
                "prev => document.querySelector('#item-card').dataset.itemId !== prev", arg=previous
            )

        def selected() -> str:
            return page.get_attribute('#domain-list li[aria-selected="true"]', "data-domain")

        # 1. Enter approves the model's top candidate, which is preselected.
        item_id, options = current()
        text = page.text_content("#item-text")
        assert text.startswith("Обращение №") and "квитанция" in text  # Cyrillic intact
        assert selected() == options[0]
        decisions[item_id] = options[0]
        page.keyboard.press("Enter")
        wait_for_new_item(item_id)
        page.wait_for_function("document.querySelector('#done-today').textContent === '1'")

        # 2. A number key picks the second domain in the list.
        item_id, options = current()
        # The page holds no lease it does not show: only the item on screen is leased.
        config = ReviewDatasetConfig(data_dir=settings.app.data_dir, database_url=None)
        with ReviewDataset(config, Taxonomy.load(TAXONOMY_PATH)) as review:
            assert review.stats().by_status.get("in_review") == 1
            assert review.get_item(item_id).lease_holder == "alice"
        page.keyboard.press("2")
        assert selected() == options[1]
        decisions[item_id] = options[1]
        page.keyboard.press("Enter")
        wait_for_new_item(item_id)

        # 3. "/" focuses the search; Enter picks the first match; Enter again submits.
        item_id, _ = current()
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "domain-search"
        page.keyboard.type("мусор")
        page.keyboard.press("Enter")
        assert selected() == _first_match("мусор")
        decisions[item_id] = _first_match("мусор")
        page.keyboard.press("Enter")
        wait_for_new_item(item_id)

        # 4. S skips; U brings the skipped item back; arrows pick; Enter submits.
        skipped_id, options = current()
        page.keyboard.press("s")
        wait_for_new_item(skipped_id)
        page.keyboard.press("u")
        page.wait_for_function(
            "id => document.querySelector('#item-card').dataset.itemId === id", arg=skipped_id
        )
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowUp")
        assert selected() == options[1]
        decisions[skipped_id] = options[1]
        page.keyboard.press("Enter")
        wait_for_new_item(skipped_id)

        # 5. Approve one more, then Ctrl+Z takes that decision back.
        undone_id, _ = current()
        page.keyboard.press("Enter")
        wait_for_new_item(undone_id)
        page.keyboard.press("Control+z")
        page.wait_for_function(
            "id => document.querySelector('#item-card').dataset.itemId === id", arg=undone_id
        )
        page.wait_for_function("document.querySelector('#done-today').textContent === '4'")
        assert page.text_content("#left-in-queue").strip().isdigit()

        artifacts = Path(os.environ.get("ESK_TEST_ARTIFACTS") or tmp_path)
        artifacts.mkdir(parents=True, exist_ok=True)
        screenshot = artifacts / "review_page.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"review page screenshot: {screenshot}")
        browser.close()

    assert screenshot.stat().st_size > 10_000
    config = ReviewDatasetConfig(data_dir=settings.app.data_dir, database_url=None)
    with ReviewDataset(config, Taxonomy.load(TAXONOMY_PATH)) as review:
        for item_id, domain in decisions.items():
            item = review.get_item(item_id)
            assert item.corrected_domain == domain, item_id
            assert item.reviewer_id == "alice"
            assert item.status in (ReviewStatus.APPROVED, ReviewStatus.CORRECTED)
        undone = review.get_item(undone_id)
        assert undone.status not in (ReviewStatus.APPROVED, ReviewStatus.CORRECTED)
        assert undone.lease_holder == "alice"
        assert review.stats(reviewer_id="alice").reviewer_done_today == 4


def test_an_item_whose_lease_was_lost_is_dropped_not_stuck(server):
    """Another reviewer took the item on screen (as after an expired lease): submit and skip
    answer 409, and the page drops that item with a note and shows its next one."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()

    def take_from_alice(item_id: str, bob_holds: int) -> None:
        released = httpx.post(
            f"{server}/api/review/items/{item_id}/release", headers=auth("alice"), timeout=10
        )
        assert released.status_code == 200, released.text
        # Bob's own leases, plus one new claim: the released item, first in the queue.
        leased = httpx.get(
            f"{server}/api/review/next?count={bob_holds + 1}", headers=auth("bob"), timeout=10
        )
        assert item_id in {item["id"] for item in leased.json()}

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page()
        _log_in_by_keyboard(page, server, "alice")

        seen = set()
        for key in ("Enter", "s"):  # a lost submit, then a lost skip
            lost = page.get_attribute("#item-card", "data-item-id")
            take_from_alice(lost, bob_holds=len(seen))
            seen.add(lost)
            page.keyboard.press(key)
            page.wait_for_function(
                "prev => document.querySelector('#item-card').dataset.itemId !== prev", arg=lost
            )
            assert "больше не закреплён" in page.text_content("#status")
            assert page.text_content("#error") == ""

        # The page goes on with its own items: the next decision is accepted.
        last = page.get_attribute("#item-card", "data-item-id")
        assert last not in seen
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#done-today').textContent === '1'")
        browser.close()
