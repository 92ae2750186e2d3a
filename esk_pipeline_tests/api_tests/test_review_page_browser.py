"""A whole review session on the reviewer page, by keyboard alone, in headless Chromium.

The API runs under a real uvicorn on a free loopback port with a temporary data folder and a
seeded review store; Playwright drives Debian's `chromium` (its own browser download does not
work offline). Screenshots go to $ESK_TEST_ARTIFACTS (or the test's tmp folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml

from esk_pipeline.api import create_app
from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig, ReviewStatus
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import Settings
from esk_pipeline_tests.api_tests.conftest import (
    TAXONOMY_PATH,
    TOKENS,
    auth,
    make_settings,
    seed_review,
)

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


@contextmanager
def _serving(settings: Settings) -> Iterator[str]:
    """uvicorn serving the app in a thread; yields its base URL."""
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
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(settings) -> Iterator[str]:
    seed_review(settings, 6)
    with _serving(settings) as url:
        yield url


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


TAXONOMY = Taxonomy.load(TAXONOMY_PATH)


def _predicted(settings: Settings, item_id: str) -> str:
    """The model's guess for an item, as the review store holds it."""
    config = ReviewDatasetConfig(data_dir=settings.app.data_dir, database_url=None)
    with ReviewDataset(config, Taxonomy.load(settings.app.taxonomy_path)) as review:
        return review.get_item(item_id).predicted_domain


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

        # 1. The page asks "is it X?" with X's guideline beside the text; Enter approves.
        item_id, _ = current()
        text = page.text_content("#item-text")
        assert text.startswith("Обращение №") and "квитанция" in text  # Cyrillic intact
        assert page.is_visible("#verify") and page.is_hidden("#chooser")
        proposed = TAXONOMY.get(_predicted(settings, item_id))
        assert page.text_content("#verify-name") == proposed.name
        assert page.text_content("#guideline-text") == proposed.description
        decisions[item_id] = proposed.id
        page.keyboard.press("Enter")
        wait_for_new_item(item_id)
        page.wait_for_function("document.querySelector('#done-today').textContent === '1'")

        # 2. N opens the list; a number key picks the second domain; Enter submits it.
        item_id, _ = current()
        page.keyboard.press("n")
        item_id, options = current()
        # The page holds no lease it does not show: only the item on screen is leased.
        config = ReviewDatasetConfig(data_dir=settings.app.data_dir, database_url=None)
        with ReviewDataset(config, Taxonomy.load(TAXONOMY_PATH)) as review:
            assert review.stats().by_status.get("in_review") == 1
            assert review.get_item(item_id).lease_holder == "alice"
        page.keyboard.press("2")
        assert selected() == options[1]
        assert page.text_content("#guideline-name") == TAXONOMY.get(options[1]).name
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

        # 4. S skips; U brings the skipped item back; arrows open the list and pick; Enter submits.
        skipped_id, _ = current()
        page.keyboard.press("s")
        wait_for_new_item(skipped_id)
        page.keyboard.press("u")
        page.wait_for_function(
            "id => document.querySelector('#item-card').dataset.itemId === id", arg=skipped_id
        )
        page.keyboard.press("ArrowDown")  # opens the list, nothing selected yet
        _, options = current()
        for key in ("ArrowDown", "ArrowDown", "ArrowDown", "ArrowUp"):
            page.keyboard.press(key)
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


EXTRA_DOMAINS = [  # three more domains: with the shipped twelve, a taxonomy of fifteen
    {
        "id": "parking",
        "name": "Парковки и эвакуация",
        "description": "Платные парковки, резидентные разрешения, эвакуация автомобилей.",
        "examples": ["эвакуировали машину", "как получить резидентное разрешение"],
    },
    {
        "id": "pets",
        "name": "Домашние животные",
        "description": "Бездомные животные, выгул собак, ветеринарные станции.",
        "examples": ["во дворе бродячие собаки", "где привить кошку"],
    },
    {
        "id": "noise",
        "name": "Шум и тишина",
        "description": "Шум по ночам, ремонт в выходные, громкая музыка у соседей.",
        "examples": ["соседи шумят ночью", "ремонт в воскресенье с утра"],
    },
]


def _fifteen_domains(folder: Path) -> Path:
    data = yaml.safe_load(TAXONOMY_PATH.read_text(encoding="utf-8"))
    data["domains"] = data["domains"] + EXTRA_DOMAINS
    assert len(data["domains"]) == 15
    path = folder / "taxonomy15.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _rows_for(ids: list[str]) -> list[dict[str, object]]:
    """Queue rows in a known order (review_gain): proposal, audit, wrong proposal, audit."""
    plan = [  # (reason, model's guess, its runner-up)
        ("needs_review", ids[2], ids[0]),
        ("audit", ids[4], ids[1]),
        ("needs_review", ids[6], ids[7]),
        ("audit", ids[13], ids[3]),
    ]
    return [
        {
            "row_id": f"item-{n}",
            "text": f"Обращение №{n}: во дворе второй день стоит эвакуатор и шумит",
            "domain": guess,
            "confidence": 0.55,
            "top_candidates": json.dumps([[guess, 0.55], [runner_up, 0.3]]),
            "label_source": "local",
            "status": "labeled",
            "review_reason": reason,
            "review_gain": 10 - n,
        }
        for n, (reason, guess, runner_up) in enumerate(plan)
    ]


def test_fifteen_domains_one_key_approval_and_blind_audits(project_env, tmp_path):
    """The header before login, every one of 15 domains on a visible key, Russian badges,
    "is it X?" approved with one key beside X's guideline, and audit items shown blind."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    settings = make_settings(project_env / "api15", taxonomy_path=_fifteen_domains(tmp_path))
    taxonomy = Taxonomy.load(settings.app.taxonomy_path)
    ids = taxonomy.ids
    config = ReviewDatasetConfig(data_dir=settings.app.data_dir, database_url=None)
    with ReviewDataset(config, taxonomy) as review:
        review.add_items(_rows_for(ids))
    keystrokes: dict[str, int] = {}  # kind of decision -> keys pressed for it
    decisions: dict[str, str] = {}
    failed_requests: list[str] = []

    with _serving(settings) as server, sync_api.sync_playwright() as playwright:
        assert httpx.get(f"{server}/favicon.ico", timeout=10).headers["content-type"] == (
            "image/x-icon"
        )
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on(
            "response",
            lambda r: failed_requests.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        page.goto(server)
        page.wait_for_function(
            "document.activeElement && document.activeElement.id === 'token-input'"
        )
        # Before login the header shows the title only: no reviewer, no logout.
        assert page.is_hidden("#session")
        assert "Выйти" not in page.inner_text("header")
        page.keyboard.type(TOKENS["alice"])
        page.keyboard.press("Enter")
        page.wait_for_selector("#item-card:not([hidden])")
        assert page.is_visible("#session")

        def item_id() -> str:
            return page.get_attribute("#item-card", "data-item-id")

        def press(kind: str, *keys: str) -> None:
            for key in keys:
                page.keyboard.press(key)
            keystrokes[kind] = keystrokes.get(kind, 0) + len(keys)

        def decided(previous: str) -> None:
            page.wait_for_function(
                "prev => document.querySelector('#item-card').dataset.itemId !== prev", arg=previous
            )

        def selected() -> str | None:
            return page.evaluate(
                "(document.querySelector('#domain-list li[aria-selected=\"true\"]') || {}).dataset"
                "?.domain ?? null"
            )

        def visible_words() -> str:
            """The card's words as shown, minus key caps and domain ids (identifiers)."""
            return page.evaluate(
                """() => {
                    const card = document.querySelector('#item-card').cloneNode(true);
                    const skip = 'kbd, .key, .domain-id, [hidden]';
                    card.querySelectorAll(skip).forEach(e => e.remove());
                    return card.textContent;
                }"""
            )

        # 1. A proposal: "is it X?", X's guideline beside the text, Russian badge; Enter approves.
        first = item_id()
        assert first == "item-0"
        assert page.text_content("#item-priority") == "средний"
        assert page.text_content("#verify-name") == taxonomy.get(ids[2]).name
        assert page.text_content("#guideline-text") == taxonomy.get(ids[2]).description
        assert not re.search(r"[A-Za-z]{2,}", visible_words()), visible_words()
        press("approve", "Enter")
        decisions[first] = ids[2]
        decided(first)

        # 2. An audit item: blind. No guess, no scores, no preselection, taxonomy order.
        audit = item_id()
        assert audit == "item-1"
        assert page.get_attribute("#item-card", "data-reason") == "audit"
        assert page.text_content("#item-reason") == "контроль"
        assert page.is_hidden("#item-model") and page.is_hidden("#verify")
        options = page.eval_on_selector_all(
            "#domain-list li", "els => els.map(e => e.dataset.domain)"
        )
        assert options == ids
        assert (
            page.eval_on_selector_all(".score", "els => els.map(e => e.textContent)") == [""] * 15
        )
        assert selected() is None
        assert not re.search(r"[A-Za-z]{2,}", visible_words()), visible_words()
        # ... and the API never sent the guess to the page.
        leased = page.evaluate(
            """token => fetch('/api/review/next?count=3',
                              {headers: {Authorization: `Bearer ${token}`}})
                .then(r => r.json())""",
            TOKENS["alice"],
        )
        audits = [item for item in leased if item["reason"] == "audit"]
        assert audits and all(
            item["predicted_domain"] is None and item["top_candidates"] == [] for item in audits
        )

        # Every domain has a visible key of its own, and nothing is cut off in a scroll box.
        assert page.evaluate(
            "(() => { const l = document.querySelector('#domain-list');"
            " return l.scrollHeight <= l.clientHeight + 1; })()"
        )
        keys = page.eval_on_selector_all(
            "#domain-list li", "els => els.map(e => e.querySelector('.key').textContent)"
        )
        assert len(set(keys)) == 15 and all(keys)
        for index, domain in enumerate(options):
            li = page.locator(f"#domain-list li[data-domain='{domain}']")
            assert li.is_visible() and li.locator(".key").is_visible()
            key = keys[index][0]  # "Q" of "QЙ": the Latin key cap
            page.keyboard.press(key if key.isdigit() else f"Key{key}")
            assert selected() == domain, (key, domain)
            assert page.text_content("#guideline-name") == taxonomy.get(domain).name
        artifacts = Path(os.environ.get("ESK_TEST_ARTIFACTS") or tmp_path)
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts / "review_page_audit.png"), full_page=True)
        press("audit", f"Key{keys[10][0]}", "Enter")  # the 11th domain, by its letter key
        decisions[audit] = options[10]
        decided(audit)

        # 3. A wrong proposal: N opens the list (candidates first), a key picks, Enter submits.
        wrong = item_id()
        assert wrong == "item-2"
        assert page.text_content("#verify-name") == taxonomy.get(ids[6]).name
        press("correct", "n")
        candidates = page.eval_on_selector_all(
            "#domain-list li", "els => els.map(e => e.dataset.domain)"
        )
        assert candidates[:2] == [ids[6], ids[7]]
        press("correct", "2", "Enter")
        decisions[wrong] = ids[7]
        decided(wrong)

        # 4. The second audit item: a digit and Enter.
        second_audit = item_id()
        assert page.get_attribute("#item-card", "data-reason") == "audit"
        press("audit", "4", "Enter")
        decisions[second_audit] = ids[3]
        page.wait_for_selector("#empty-state:not([hidden])")
        browser.close()

    per_decision = {
        "approve": keystrokes["approve"] / 1,
        "correct": keystrokes["correct"] / 1,
        "audit": keystrokes["audit"] / 2,
    }
    print(f"keystrokes per decision: {per_decision}")
    assert per_decision == {"approve": 1, "correct": 3, "audit": 2}
    assert failed_requests == []
    with ReviewDataset(config, taxonomy) as review:
        for decided_id, domain in decisions.items():
            assert review.get_item(decided_id).corrected_domain == domain, decided_id


@pytest.mark.parametrize(
    ("earlier", "badge"),
    [
        (["alice"], "контроль · второе мнение"),
        (["alice", "carol"], "контроль · разбор разногласия"),
    ],
)
def test_the_second_opinion_on_an_audit_item_is_blind_and_says_so(
    project_env, tmp_path, earlier, badge
):
    """Alice corrected an audit item against a confident model (and Carol, with a third domain,
    disagreed: it goes to adjudication); Bob, who gives the next opinion, sees it as an audit
    item (no guess, no scores, taxonomy order), badged with what it waits for."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    settings = make_settings(project_env / "api-second", taxonomy_path=_fifteen_domains(tmp_path))
    taxonomy = Taxonomy.load(settings.app.taxonomy_path)
    [row] = _rows_for(taxonomy.ids)[1:2]  # an audit row; the model says the 5th domain
    other = taxonomy.ids[0]
    config = ReviewDatasetConfig(
        data_dir=settings.app.data_dir, database_url=None, second_opinion_confidence=0.0
    )
    with ReviewDataset(config, taxonomy) as review:
        review.add_items([row])
        [item] = review.get_next(1, "alice")
        assert review.submit_review(item.id, other, "alice").waiting_for == "second_opinion"
        if "carol" in earlier:
            review.get_next(1, "carol")
            third = taxonomy.ids[2]
            assert review.submit_review(item.id, third, "carol").needs_adjudication

    with _serving(settings) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        _log_in_by_keyboard(page, server, "bob")
        assert page.get_attribute("#item-card", "data-item-id") == item.id
        assert page.get_attribute("#item-card", "data-reason") == "audit"
        assert page.text_content("#item-reason") == badge
        assert page.is_hidden("#item-model") and page.is_hidden("#verify")
        options = page.eval_on_selector_all(
            "#domain-list li", "els => els.map(e => e.dataset.domain)"
        )
        assert options == taxonomy.ids
        assert set(page.eval_on_selector_all(".score", "els => els.map(e => e.textContent)")) == {
            ""
        }
        page.keyboard.press("1")  # Alice's correction, the first domain
        page.keyboard.press("Enter")
        page.wait_for_selector("#empty-state:not([hidden])")
        browser.close()
    with ReviewDataset(config, taxonomy) as review:
        decided = review.get_item(item.id)
    assert (decided.status, decided.reviews, decided.reason) == (
        ReviewStatus.CORRECTED,
        len(earlier) + 1,
        "audit",
    )
