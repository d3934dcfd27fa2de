"""Headless Chromium (Debian's, driven by Playwright) opens every page of the rendered site: no console
error, no broken internal link, every image loads and is not blank, and the paper's numbers shown on the
Figure 2 page equal data/paper/published_results.csv.

The site is built from SYNTHETIC results (tests/test_site.py) and, when it exists, from the committed
results/. It is served over HTTP on 127.0.0.1 (a canvas can read back same-origin images only)."""

from __future__ import annotations

import functools
import http.server
import shutil
import sys
import threading
import urllib.error
import urllib.request
from urllib.parse import urldefrag, urlparse

import pytest
from test_site import ROOT, SMALLDOCS, build_site, paper_values, synthetic_site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e .[site])"
)
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser (Debian: apt-get install chromium)"),
    pytest.mark.skipif(SMALLDOCS is None, reason="smalldocs is not installed (pip install -e .[site])"),
]
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip

# For every image of the page: wait until it has loaded or failed (lazy ones are made eager), draw it
# on a canvas and count its distinct colours (up to 3).
IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => (i.complete && i.naturalWidth) ? null :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 5000); })));
  return imgs.map(i => {
    let colours = 0;
    if (i.naturalWidth > 0) {
      const w = Math.min(i.naturalWidth, 300), h = Math.max(1, Math.round(i.naturalHeight * w / i.naturalWidth));
      const c = document.createElement('canvas'); c.width = w; c.height = h;
      const ctx = c.getContext('2d'); ctx.drawImage(i, 0, 0, w, h);
      const d = ctx.getImageData(0, 0, w, h).data, seen = new Set();
      for (let k = 0; k < d.length && seen.size < 3; k += 4) seen.add(`${d[k]},${d[k+1]},${d[k+2]},${d[k+3]}`);
      colours = seen.size;
    }
    return {src: i.getAttribute('src').slice(0, 120), width: i.naturalWidth, colours};
  });
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the browser left a page mid-transfer
            super().handle_error(request, client_address)


@pytest.fixture(scope="module", params=["synthetic", "committed"])
def served(request, tmp_path_factory):
    """The rendered site, served on a free port of 127.0.0.1: (base URL, site folder)."""
    if request.param == "committed":
        if not (ROOT / "results" / "results.csv").exists():
            pytest.skip("no committed results/ yet (the workflow's default run writes results/results.csv)")
        site = build_site(tmp_path_factory.mktemp("committed"), results=ROOT / "results")
    else:
        site = synthetic_site()
    handler = functools.partial(_Quiet, directory=str(site))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", site
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_every_page_loads_cleanly(served, browser):
    base, site = served
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert "index.html" in pages and "site/figure-2.html" in pages and len(pages) >= 9
    problems, links, n_images = [], set(), 0
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

    def failed(r):  # the browser fetches the favicon after "load" and cancels it when the next page opens
        if not (r.url.endswith("favicon.svg") and "ERR_ABORTED" in (r.failure or "")):
            errors.append(f"request failed: {r.url[:120]} {r.failure}")

    page.on("requestfailed", failed)
    for path in pages:
        errors.clear()
        page.goto(base + path, wait_until="load")
        for img in page.evaluate(IMAGES_JS):
            n_images += 1
            if img["width"] == 0:
                problems.append(f"{path}: image {img['src']} did not load")
            elif img["colours"] < 2:
                problems.append(f"{path}: image {img['src']} is blank (a single colour)")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            if href.startswith(base):
                links.add((path, href))
        page.wait_for_timeout(50)  # late console messages
        problems += [f"{path}: {e}" for e in errors]
    page.close()
    assert n_images >= 6, "the figure pages should show images"
    texts: dict[str, str] = {}
    for path, href in sorted(links):
        url, frag = urldefrag(href)
        if url not in texts:
            code = _status(url)
            if code != 200:
                problems.append(f"{path}: broken link {href} (HTTP {code})")
                continue
            target = site / urlparse(url).path.lstrip("/")
            target = target / "index.html" if target.is_dir() else target
            texts[url] = target.read_text(errors="replace") if target.suffix == ".html" else ""
        if frag and texts.get(url) is not None and target_is_html(url) and f'id="{frag}"' not in texts[url]:
            problems.append(f"{path}: link {href}: no element with id {frag!r}")
    assert not problems, "\n".join(problems)


def target_is_html(url: str) -> bool:
    path = urlparse(url).path
    return path.endswith(".html") or path.endswith("/")


def test_figure_2_shows_the_papers_numbers(served, browser):
    base, _ = served
    page = browser.new_page()
    page.goto(base + "site/figure-2.html", wait_until="load")
    page.eval_on_selector_all("details", "els => els.forEach(e => { e.open = true; })")  # paper-only rows
    shown = page.eval_on_selector_all(
        'table[data-figure="2"] td[data-source="paper"]',
        "els => els.map(e => [e.dataset.figure, e.dataset.target, e.dataset.method, e.dataset.p, e.innerText,"
        " e.checkVisibility()])",
    )
    page.close()
    assert shown and all(visible for *_, visible in shown), "the paper's numbers are not visible"
    values = {(f, t, m, round(float(p), 4), round(float(text), 2)) for f, t, m, p, text, _ in shown}
    assert len(values) == len(shown), "a paper value is shown twice"
    want = paper_values(("2", "2-low"))
    assert values == want, f"shown, not published: {values - want}; published, not shown: {want - values}"


# ------------------------------------------------------------------------- text from data stays text

ATTACK = "<script>window.__pwned = 1</script>"
IMG = '<img src="x" onerror="window.__pwned = 2">'


def crafted_notebook():
    """A modality-gap notebook whose transcript, key and error message hold markup and backticks, as an
    imported domain could bring them."""
    import nbformat
    import pandas as pd
    from test_site import synthetic_notebook

    nb = synthetic_notebook("08_modality_gap", "GAPMARK", {"target_domain": "bank`ing"})
    table = pd.DataFrame({"key": [f"k{ATTACK}"], "transcript": [f"say `{IMG}` now"]})
    out = nbformat.v4.new_output
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "show()",
            outputs=[
                out("display_data", data={"text/html": table.style.to_html(), "text/plain": "styled"}),
                out("display_data", data={"text/html": table.to_html(), "text/plain": "table"}),
                out("display_data", data={"text/markdown": f"**key{ATTACK}** · *say `x` {IMG}*"}),
                out("error", ename="ValueError", evalue=f"bad key `{ATTACK}`` {IMG}", traceback=[]),
            ],
        )
    )
    return nb


def test_text_from_data_shows_literally_and_never_runs(browser, tmp_path):
    import nbformat

    from mbasr.report.nbtidy import tidy

    def prepare(results):
        path = results / "notebooks" / "08_modality_gap.ipynb"
        nbformat.write(crafted_notebook(), path)
        tidy(path)  # as mbasr.report.publish does

    site = build_site(tmp_path, "full", prepare=prepare)
    page = browser.new_page()
    for path in ("site/modality-gap.html", "results/notebooks/08_modality_gap.html"):
        page.goto((site / path).as_uri(), wait_until="load")
        assert page.evaluate("window.__pwned") is None, f"{path}: a script from data ran"
        text = page.inner_text("main")
        assert ATTACK in text and "say `" in text, f"{path}: the text from data is not shown literally"
        assert "onerror" in text
    page.close()


# ------------------------------------------------------------------------ the report for its readers


def _claims(site) -> list[dict]:
    import json

    path = site.parent / "results" / "claims.json"
    return json.loads(path.read_text()) if path.exists() else []


def test_home_says_what_we_found_in_agreement_with_the_claims(served, browser):
    from mbasr.report.findings import CLAIM_FIGURE, CODE_URL, PAPER_URL

    base, site = served
    claims = _claims(site)
    page = browser.new_page()
    page.goto(base + "index.html", wait_until="load")
    block = page.locator("#what-we-found")
    assert block.count() == 1, "no 'What we found' block on the home page"
    by_verdict: dict[str, list[str]] = {}
    for c in claims:
        by_verdict.setdefault(c["verdict"], []).append(str(c["claim"]))
    for verdict, numbers in by_verdict.items():
        assert sorted(block.get_attribute(f"data-{verdict.replace(' ', '-')}").split(",")) == sorted(numbers)
    text = block.inner_text()
    assert 3 <= text.count(". ") + 1 and "deviations table" in text
    assert block.locator("img").count() == 1  # the figure thumbnail
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    assert PAPER_URL in hrefs and CODE_URL in hrefs
    assert "@inproceedings" in page.inner_text("main") and "Limitations" in page.inner_text("main")
    for figure in sorted(set(CLAIM_FIGURE.values())):  # each figure page opens with its verdict line
        page.goto(base + f"site/figure-{figure}.html", wait_until="load")
        line = page.locator("p.mbasr-verdict")
        mine = [c for c in claims if CLAIM_FIGURE[int(c["claim"])] == figure]
        assert line.count() == 1
        assert line.get_attribute("data-claims") == ",".join(str(c["claim"]) for c in mine)
        held = [c["verdict"] == "held" for c in mine]
        want = "reproduced" if all(held) else "partly reproduced" if any(held) else None
        assert want is None or line.get_attribute("data-verdict") == want
        assert want is not None or line.get_attribute("data-verdict") in ("not reproduced", "inconclusive")
    page.close()


def test_pages_are_light_and_run_pages_have_their_own_titles(served, browser):
    base, site = served
    heavy = [
        f"{p.relative_to(site)}: {p.stat().st_size / 1e6:.2f} MB"
        for p in site.rglob("*.html")
        if p.stat().st_size > 1_000_000
    ]
    assert not heavy, f"pages over 1 MB: {heavy}"
    titles: dict[str, str] = {}
    page = browser.new_page()
    for p in sorted((site / "results" / "notebooks").glob("*.html")):
        page.goto(base + p.relative_to(site).as_posix(), wait_until="load")
        titles[p.name] = page.title()
    page.close()
    repeated = {t for t in titles.values() if list(titles.values()).count(t) > 1}
    assert not repeated, f"page titles shared by several run pages: {repeated}"
