"""The page in a real browser: Debian's chromium driven by Playwright. A missing chromium fails the test."""

import os
from pathlib import Path

import pytest

from seqlab.explain import explain
from seqlab.predict import load

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # a browser and a live server
CHROMIUM = Path(os.environ.get("SEQLAB_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
REVIEW = "An excellent film: a wonderful cast, a great story. Only the ending was a bit boring."


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"no chromium at {CHROMIUM}: install Debian's package (apt-get install chromium) "
                    "or set SEQLAB_CHROMIUM; .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(live_server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length === 2")
    yield page
    assert requested and all(url.startswith(live_server.url) for url in requested), requested  # nothing from elsewhere
    page.close()


def rendered_words(page):
    return page.eval_on_selector_all(
        "#highlighted .word",
        "spans => spans.map(s => ({text: s.textContent, score: s.dataset.score, cut: s.classList.contains('cut'),"
        " background: getComputedStyle(s).backgroundColor}))")


def test_type_a_review_click_and_see_the_prediction_and_why(page, served_runs, tmp_path):
    page.fill("#review", REVIEW)
    page.click("#predict")
    page.wait_for_selector("#result:not([hidden])")
    expected = explain(load(served_runs[0]), REVIEW)
    assert page.text_content("#label") == expected.prediction.label == "positive"
    assert float(page.get_attribute("#result", "data-probability")) == expected.prediction.probability  # same number
    assert page.text_content("#probability") == f"{100 * expected.prediction.probability:.1f}%"
    assert "occlusion" in page.text_content("#method-note")
    words = rendered_words(page)
    assert [w["text"] for w in words] == [w.text for w in expected.words]
    assert [float(w["score"]) for w in words] == [w.score for w in expected.words]
    assert page.text_content("#highlighted") == REVIEW  # the review as typed, punctuation and spaces kept
    excellent = next(w for w in words if w["text"] == "excellent")
    assert float(excellent["score"]) > 0 and excellent["background"].startswith("rgba(22, 163, 74")  # green: toward positive
    boring = next(w for w in words if w["text"] == "boring")
    assert float(boring["score"]) < 0 and boring["background"].startswith("rgba(220, 38, 38")  # red: toward negative
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 20_000


def test_long_review_shows_the_words_that_were_cut(page):
    review = "Terrible opening. " * 150 + "But the last part is great."
    page.fill("#review", review)
    page.select_option("#model", "other")
    page.select_option("#method", "integrated_gradients")
    page.click("#predict")
    page.wait_for_selector("#result:not([hidden])")
    assert "integrated gradients" in page.text_content("#method-note")
    words = rendered_words(page)
    cut = [w for w in words if w["cut"]]
    assert len(words) == 306 and len(cut) == 306 - 200  # 200 words read; the start token and 106 words cut
    assert all(w["score"] == "" for w in cut) and not any(w["cut"] for w in words[len(cut):])
    assert f"first {len(cut)} word(s) were cut off" in page.text_content("#cut-note")
    assert "other" in page.text_content("#meta")


def test_errors_are_shown_on_the_page(page):
    page.fill("#review", "x" * 1_100_000)
    page.click("#predict")
    page.wait_for_selector("#error:not([hidden])")
    assert "limit" in page.text_content("#error")
