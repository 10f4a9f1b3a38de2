"""Check the built documentation site: API coverage, internal links, and pages in a real browser.

    python docs/check_site.py [--html docs/_build/html] [--screenshot PATH] [--require-browser]

Run it after ``sphinx-build -W -b html docs docs/_build/html``. Three checks, each printing one
line per finding and a summary line:

1. **API pages**: every public name (``lvm.__all__`` and the ``__all__`` of the public submodules)
   has its page under ``generated/`` with an anchor of its full name, and no page there documents
   a name that is not public.
2. **Internal links**: every ``href`` and ``src`` in every page that points inside the site names a
   file that exists, and its ``#fragment``, if any, an id in that file.
3. **Browser**: the index page and gallery pages, served on 127.0.0.1, opened in headless Chromium
   through Playwright: fails on a JavaScript error, a console error, a request that fails or
   answers 4xx/5xx, a request that leaves the machine, or an image that did not load. Needs
   ``/usr/bin/chromium`` (Debian's ``chromium``) and the ``playwright`` package from PyPI (its
   driver only; no browser download); without them it prints a line saying it was skipped, and
   fails only with ``--require-browser``. ``--screenshot`` saves the index page as a PNG.

The exit status is 1 when any check found something, 0 otherwise.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import importlib
import os
import shutil
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
#: Submodules whose ``__all__`` is documented in api.rst, as public names of their own.
PUBLIC_SUBMODULES = ("evidence", "likelihoods", "latents", "datasets", "plot", "metrics", "settings")
#: Pages opened in the browser: the index and one page of each gallery.
BROWSER_PAGES = ("index.html", "auto_examples/essay_evidence.html",
                 "user_guide/prior_monte_carlo.html", "api.html")
CHROMIUM = os.environ.get("LVM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic"]


def public_names() -> list[str]:
    """Full names of every public class, function and datum: what the API reference must cover."""
    import lvm

    names = []
    for name in lvm.__all__:
        if name == "__version__":
            continue
        obj = getattr(lvm, name)
        if getattr(obj, "__name__", None) == f"lvm.{name}":  # a submodule: its own names below
            continue
        names.append(f"lvm.{name}")
    for sub in PUBLIC_SUBMODULES:
        module = importlib.import_module(f"lvm.{sub}")
        names += [f"lvm.{sub}.{name}" for name in module.__all__]
    return names


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append((tag, attrs[key]))


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def check_api(html: Path) -> list[str]:
    problems = []
    names = public_names()
    for name in names:
        page = html / "generated" / f"{name}.html"
        if not page.is_file():
            problems.append(f"api: no page for the public name {name} (add it to docs/api.rst)")
        elif name not in _parse(page).ids:
            problems.append(f"api: {page.relative_to(html)} has no anchor {name}")
    documented = {p.stem for p in (html / "generated").glob("lvm.*.html")}
    for extra in sorted(documented - set(names)):
        problems.append(f"api: generated/{extra}.html documents a name that is not public")
    print(f"api: {len(names)} public names, {len(documented)} pages, {len(problems)} problems")
    return problems


def check_links(html: Path) -> list[str]:
    problems, n_links = [], 0
    # Pages of the site; _static/ holds the theme's template fragments, not pages.
    pages = sorted(p for p in html.rglob("*.html") if "_static" not in p.relative_to(html).parts)
    for page in pages:
        for tag, url in _parse(page).links:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:", "data:")):
                continue  # external: not this check's business (the browser check sees requests)
            n_links += 1
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(html)}: <{tag}> {url}"
            root, resolved = html.resolve(), target.resolve()
            if root not in resolved.parents and resolved != root:
                problems.append(f"links: {where} points outside the site")
            elif not target.is_file():
                problems.append(f"links: {where}: no such file")
            elif parts.fragment and target.suffix == ".html" \
                    and unquote(parts.fragment) not in _parse(target).ids:
                problems.append(f"links: {where}: no id {parts.fragment!r} in {target.name}")
    print(f"links: {n_links} internal links in {len(pages)} pages, {len(problems)} dead")
    return problems


def _serve(html: Path):
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def check_browser(html: Path, screenshot: Path | None, require: bool) -> list[str]:
    missing = []
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        missing.append(f"Chromium ({CHROMIUM}; Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package (pip install playwright; no browser download)")
    if missing:
        line = "browser: SKIPPED, not installed: " + "; ".join(missing)
        print(line)
        return [line] if require else []
    problems = []
    server = _serve(html)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            found: list[str] = []
            page.on("pageerror", lambda exc: found.append(f"JavaScript error: {exc}"))
            page.on("console", lambda msg: found.append(f"console {msg.type}: {msg.text}")
                    if msg.type == "error" else None)
            page.on("requestfailed", lambda req: found.append(
                f"request failed: {req.url} ({req.failure})"))
            page.on("response", lambda res: found.append(f"HTTP {res.status}: {res.url}")
                    if res.status >= 400 else None)
            page.on("request", lambda req: None if req.url.startswith((base, "data:", "blob:"))
                    else found.append(f"request leaves the site: {req.url}"))
            for name in BROWSER_PAGES:
                found.clear()
                page.goto(base + name, wait_until="networkidle")
                broken = page.evaluate(
                    "() => Array.from(document.images)"
                    ".filter(img => !img.complete || img.naturalWidth === 0)"
                    ".map(img => img.getAttribute('src'))")
                found += [f"image did not load: {src}" for src in broken]
                n_images = page.evaluate("() => document.images.length")
                n_math = page.evaluate("() => document.querySelectorAll('mjx-container').length")
                title = page.title()
                if name == "index.html" and screenshot is not None:
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot), full_page=True)
                problems += [f"browser: {name}: {f}" for f in found]
                print(f"browser: {name} ({title!r}): {n_images} images, {n_math} formulas "
                      f"typeset, {len(found)} problems")
            browser.close()
    finally:
        server.shutdown()
    if screenshot is not None:
        print(f"browser: screenshot of the index page: {screenshot}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=HERE / "_build" / "html",
                        help="the built site (default: docs/_build/html)")
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="save a full-page PNG of the index page here")
    parser.add_argument("--require-browser", action="store_true",
                        help="fail, rather than skip, when Chromium or playwright is missing")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"check_site: no built site at {args.html}; run "
              "sphinx-build -W -b html docs docs/_build/html first")
        return 1
    problems = check_api(args.html) + check_links(args.html)
    problems += check_browser(args.html, args.screenshot, args.require_browser)
    for p in problems:
        print(p)
    print(f"check_site: {'FAILED, ' + str(len(problems)) + ' problems' if problems else 'OK'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
