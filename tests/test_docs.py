"""The documentation site (docs/): it builds with warnings as errors, every public name has an API entry,
no internal link is broken, nothing is fetched from the network, and in a real browser (headless Chromium)
the math renders and every chapter shows its figures.

The build runs once per session into a temporary folder, a fresh build of every page; the executed
notebooks come from jupyter-cache (docs/_build/.jupyter_cache), so when ``.ci/run`` has built the site
first, the chapters are not run again (a notebook that changed since is).
"""
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import nnlayers as nl
from tests.helpers import ROOT, importable, require

DOCS_PACKAGES = ("sphinx", "myst_nb", "furo", "jupyter_cache", "sphinx-mathjax-offline")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WITHOUT_FIGURES = {"02-chain-rule"}          # the one chapter that draws nothing (as tests/test_notebooks.py)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built afresh with ``sphinx -W`` (the README's command, into a temporary folder)."""
    require(importable(*DOCS_PACKAGES), "the docs extra is not installed (pip install -e '.[docs]')")
    html = tmp_path_factory.mktemp("docs") / "html"
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           str(ROOT / "docs"), str(html)], capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert done.returncode == 0, f"sphinx -W failed:\n{done.stderr[-6000:]}"
    return html


def test_the_site_builds_with_warnings_as_errors(site):
    pages = {path.relative_to(site).as_posix() for path in site.rglob("*.html")}
    for name in ("index", "getting-started", "chapters", "layers", "writing-a-layer", "training", "attention", "data",
                 "saving", "gpu", "speed", "architecture", "changelog"):
        assert f"{name}.html" in pages, name
    for notebook in NOTEBOOKS:                                    # every chapter, later ones included
        assert f"chapters/{notebook.stem}.html" in pages, notebook.name


def test_every_public_name_has_an_api_entry(site):
    from sphinx.util.inventory import InventoryFile

    with open(site / "objects.inv", "rb") as file:
        inventory = InventoryFile.load(file, "", os.path.join)
    documented = {name for kind, entries in inventory.items() if kind.startswith("py:") for name in entries}
    missing = [name for name in nl.__all__ if f"nnlayers.{name}" not in documented]
    assert not missing, f"no API entry for nnlayers.{', nnlayers.'.join(missing)}"


class _Links(HTMLParser):
    """Every href and src of a page, its ids, and the scripts and stylesheets it loads."""

    def __init__(self):
        super().__init__()
        self.links, self.ids, self.loads = [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append(attrs[key])
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag in ("script", "img", "iframe") and attrs.get("src"):
            self.loads.append(attrs["src"])
        if tag == "link" and attrs.get("href") and {"stylesheet", "preload", "icon"} & set(
                (attrs.get("rel") or "").split()):
            self.loads.append(attrs["href"])


def _parse(path):
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_no_internal_link_is_broken_and_nothing_comes_from_the_network(site):
    pages = {path: _parse(path) for path in site.rglob("*.html")}
    broken, remote = [], []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme in ("http", "https", "mailto", "data", "javascript"):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if not target.exists():
                broken.append(f"{path.relative_to(site)} → {link}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{path.relative_to(site)} → {link} (no such anchor)")
        remote += [f"{path.relative_to(site)} loads {src}" for src in page.loads if re.match(r"(https?:)?//", src)]
    for sheet in site.rglob("*.css"):
        text = re.sub(r"/\*.*?\*/", "", sheet.read_text(encoding="utf-8", errors="replace"), flags=re.S)
        remote += [f"{sheet.name} loads {url}"
                   for url in re.findall(r"(?:url\(|@import)\s*['\"]?((?:https?:)?//[^'\")]+)", text)]
    assert not broken, "broken links:\n" + "\n".join(broken[:30])
    assert not remote, "the site needs the network:\n" + "\n".join(remote[:30])
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()          # MathJax travels with the site


def _dom(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, as headless Chromium sees it from file://."""
    done = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                           f"--user-data-dir={profile}", "--virtual-time-budget=60000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_browser_shows_each_chapter_with_math_and_figures(site, notebook, tmp_path):
    require(CHROMIUM is not None, "Chromium is not installed (Debian: apt-get install chromium)")
    page = site / "chapters" / f"{notebook.stem}.html"
    source = page.read_text(encoding="utf-8")
    dom = _dom(page, tmp_path)
    if 'class="math' in source:                     # the chapter has math: MathJax typeset every piece of it
        assert "<mjx-container" in dom, f"{page.name}: MathJax rendered no math"
        pieces = source.count('class="math notranslate')      # one per inline or display formula
        assert dom.count("<mjx-container") >= pieces, f"{page.name}: some math left unrendered"
        assert "<mjx-merror" not in dom, f"{page.name}: MathJax reported a TeX error"
    parser = _Images()
    parser.feed(dom)
    figures = [src for src in parser.sources if src.startswith("data:image/") or "_images/" in src]
    for src in figures:
        if not src.startswith("data:"):
            assert (page.parent / unquote(urlsplit(src).path)).resolve().is_file(), f"{page.name}: {src} is missing"
    if notebook.stem not in WITHOUT_FIGURES:
        assert figures, f"{page.name}: no figure shown"


def test_a_browser_renders_math_on_the_layer_reference(site, tmp_path):
    require(CHROMIUM is not None, "Chromium is not installed (Debian: apt-get install chromium)")
    dom = _dom(site / "layers.html", tmp_path)
    assert "<mjx-container" in dom and "<mjx-merror" not in dom
