"""The explorers in a real browser: JupyterLab + headless Chromium, driven by Playwright.

For every notebook with an explorer: JupyterLab (127.0.0.1, no token, its own workspace per
notebook) opens it, runs all cells, and the test waits until no cell is pending and the
kernel is idle. Then for every explorer: it rendered (no "Error displaying widget"), and
each of its sliders, moved with the keyboard (End, or Home when already at the end) on
the explorer as it opens (its cell is run again before each slider), redraws the figure
within ``REDRAW_S`` seconds with a pixel difference. Finally the notebook
is saved, its kernel shut down, the page reloaded: the saved outputs show each explorer's
last figure as a plain PNG, never "model not found". Screenshots go to
``runs/browser-test/`` (``TCUL_SCREENSHOTS`` to choose), with ``measurements.json``.

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or ``TCUL_CHROMIUM``) and
``pip install playwright`` (``playwright install`` downloads browsers and is not needed).
Without them the test is skipped with the reason; ``TCUL_REQUIRE_BROWSER=1`` (set by
``.ci/run``) turns the skip into a failure, so CI always runs it.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
CHROMIUM = Path(os.environ.get("TCUL_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(os.environ.get("TCUL_SCREENSHOTS", ROOT / "runs" / "browser-test"))
REQUIRED = os.environ.get("TCUL_REQUIRE_BROWSER") == "1"
#: A slider move must redraw its figure within this many seconds.
REDRAW_S = 15.0
RUN_ALL_S = 240.0
EXPLORER_CALL = re.compile(r"\btw\.\w+\(")
EXPLORER_NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("[0-9][0-9]_*.ipynb")
                            if EXPLORER_CALL.search(p.read_text(encoding="utf-8")))


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set TCUL_CHROMIUM)"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "JupyterLab is not installed (pip install -e '.[lab]')"
    return None


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    """A JupyterLab server on a copy of ``notebooks/`` with a prepared smoke kit home."""
    reason = _missing()
    if reason:
        if REQUIRED:
            pytest.fail(f"TCUL_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from tcul_helpers.teaching.session import LabSession

    base = tmp_path_factory.mktemp("browser")
    home = base / "home"
    LabSession("smoke", progress=False, home=home).source_model()
    nbs = base / "notebooks"
    shutil.copytree(NB_DIR, nbs)
    from tcul_helpers.teaching.lab_settings import write_user_settings

    write_user_settings(base / "settings")  # what `make lab` sets (widget state saved)
    settings = base / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # render every cell (no windowing), so that every explorer is in the page
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TCUL_PROFILE": "smoke", "TCUL_HOME": str(home),
           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "JUPYTER_CONFIG_DIR": str(base / "config"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    env.pop("MPLBACKEND", None)  # the kernel's inline backend
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True",  # the REST calls of _shut_down_kernels
           "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={nbs}"]
    if os.getuid() == 0:
        cmd.append("--allow-root")
    log = open(base / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start: "
                                + (base / "jupyterlab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _pixel_change(a: bytes, b: bytes) -> float:
    """Fraction of pixels that differ between two PNG screenshots (1.0 if the size did)."""
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.int16)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.int16)
    if x.shape != y.shape:
        return 1.0
    return float((np.abs(x - y).max(axis=2) > 8).mean())


def _shut_down_kernels(url: str) -> None:
    """Stop every kernel of the server (REST API) and wait until none is left."""
    def call(method: str, path: str):
        req = urllib.request.Request(f"{url}{path}", method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    for k in call("GET", "/api/kernels"):
        call("DELETE", f"/api/kernels/{k['id']}")
    deadline = time.monotonic() + 30
    while call("GET", "/api/kernels") and time.monotonic() < deadline:
        time.sleep(0.5)


def _rerun_cell_of(page, images, e: int) -> None:
    """Run again the cell that shows explorer ``e`` (a fresh explorer, at its defaults)."""
    old = images.nth(e).get_attribute("src")
    page.evaluate("""(el) => { const app = window.jupyterapp; const nb = app.shell.currentWidget;
        nb.content.activeCellIndex = nb.content.widgets.findIndex(c => c.node.contains(el));
        return app.commands.execute('notebook:run-cell'); }""", images.nth(e).element_handle())
    page.wait_for_timeout(500)
    page.wait_for_function(FINISHED_JS, timeout=RUN_ALL_S * 1000, polling=300)
    page.wait_for_function(
        "([sel, e, old]) => { const im = document.querySelectorAll(sel)[e];"
        " return !!im && !!im.getAttribute('src') && im.getAttribute('src') !== old; }",
        arg=[".jp-OutputArea-output img.widget-image", e, old], timeout=RUN_ALL_S * 1000)


def _press(page, handle, readout, key: str, old: str) -> bool:
    """Press ``key`` on a focused slider handle; True when its readout changed from ``old``."""
    handle.focus()
    page.keyboard.press(key)
    try:
        page.wait_for_function("([el, old]) => el.textContent !== old",
                               arg=[readout.element_handle(), old], timeout=3000)
        return True
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: it did not move
        return False


FINISHED_JS = """() => {
  const app = window.jupyterapp; const nb = app && app.shell.currentWidget;
  if (!nb || !nb.content || !nb.sessionContext || !nb.sessionContext.session) return false;
  const kernel = nb.sessionContext.session.kernel;
  const code = nb.content.widgets.filter(c => c.model.type === 'code');
  const pending = [...nb.node.querySelectorAll('.jp-InputArea-prompt')]
      .some(e => e.textContent.includes('*'));
  return !!kernel && kernel.status === 'idle' && !pending && code.length > 0
      && code.every(c => c.model.executionCount !== null);
}"""
KERNEL_READY_JS = """() => {
  const app = window.jupyterapp; const nb = app && app.shell.currentWidget;
  const s = nb && nb.sessionContext && nb.sessionContext.session;
  return !!(s && s.kernel && s.kernel.status === 'idle');
}"""
ERRORS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code')
  .flatMap(c => { const o = c.model.outputs; const out = [];
    for (let i = 0; i < o.length; i++) { const j = o.get(i).toJSON();
      if (j.output_type === 'error') out.push(j.ename + ': ' + j.evalue); }
    return out; })"""


def _fresh_shots(folder: str) -> Path:
    shots = SHOTS / folder
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    return shots


def _open_and_run_all(browser, lab_url: str, name: str, workspace: str):
    """A new page on notebook ``name`` (its own workspace) with every cell run; the page
    and the seconds the run took."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{lab_url}/lab/workspaces/{workspace}/tree/{name}?reset")
    page.wait_for_function(KERNEL_READY_JS, timeout=120_000)
    t0 = time.monotonic()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(1000)
    page.wait_for_function(FINISHED_JS, timeout=RUN_ALL_S * 1000, polling=500)
    return page, time.monotonic() - t0


@pytest.mark.parametrize("name", EXPLORER_NOTEBOOKS, ids=lambda n: n[:2])
def test_explorers_render_and_redraw_in_a_real_browser(name, lab_url):
    from playwright.sync_api import sync_playwright

    shots = _fresh_shots(name[:2])
    record: dict = {"notebook": name, "sliders": []}
    args = ["--no-sandbox"] if os.getuid() == 0 else []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        page, seconds = _open_and_run_all(browser, lab_url, name, f"nb{name[:2]}")
        record["run_all_s"] = round(seconds, 1)
        assert page.evaluate(ERRORS_JS) == []
        page.screenshot(path=str(shots / "run-all.png"), full_page=True)
        assert page.get_by_text("Error displaying widget").count() == 0
        images = page.locator(".jp-OutputArea-output img.widget-image")
        n_explorers = images.count()
        assert n_explorers == len(EXPLORER_CALL.findall(
            (NB_DIR / name).read_text(encoding="utf-8"))), "an explorer did not render"
        for e in range(n_explorers):
            n_sliders = images.nth(e).locator("xpath=..").locator(".widget-slider").count()
            assert n_sliders > 0
            for s in range(n_sliders):
                if s > 0:  # every slider is tried on the explorer as it opens
                    _rerun_cell_of(page, images, e)
                img = images.nth(e)
                slider = img.locator("xpath=..").locator(".widget-slider").nth(s)
                label = slider.locator(".widget-label").inner_text().strip()
                readout = slider.locator(".widget-readout")
                img.scroll_into_view_if_needed()
                before_src, before_png = img.get_attribute("src"), img.screenshot()
                old = readout.inner_text()
                handle = slider.locator(".noUi-handle").first
                for key in ("End", "Home"):  # to one end; a slider already there: the other
                    t_move = time.monotonic()
                    if _press(page, handle, readout, key, old):
                        break
                new = readout.inner_text()
                assert new != old, f"{name} explorer {e} slider {label!r} did not move"
                page.wait_for_function("([el, src]) => el.getAttribute('src') !== src",
                                       arg=[img.element_handle(), before_src],
                                       timeout=REDRAW_S * 1000)
                seconds = time.monotonic() - t_move
                page.wait_for_timeout(300)  # the new image decoded
                after_png = img.screenshot()
                changed = _pixel_change(before_png, after_png)
                (shots / f"explorer{e}-{s}-{label}-before.png").write_bytes(before_png)
                (shots / f"explorer{e}-{s}-{label}-after.png").write_bytes(after_png)
                record["sliders"].append({"explorer": e, "slider": label, "from": old,
                                          "to": new, "redraw_s": round(seconds, 2),
                                          "pixels_changed": round(changed, 4)})
                assert changed > 0, f"{name} explorer {e}: slider {label!r} left the figure"
                assert page.get_by_text("Error displaying widget").count() == 0
        # saved, kernel gone, reopened: static figures instead of "model not found"
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function(
            "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
        page.close()
        _shut_down_kernels(lab_url)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab_url}/lab/workspaces/nb{name[:2]}-reopened/tree/{name}?reset")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.content", timeout=60_000)
        page.wait_for_timeout(4000)  # the widget manager restores (or fails to)
        page.screenshot(path=str(shots / "reopened.png"))
        broken = page.get_by_text("Error displaying widget")
        assert broken.count() == 0, f"{name} reopened: {broken.first.inner_text()!r}"
        shown = page.locator(".jp-OutputArea-output img.widget-image, "
                             ".jp-OutputArea-output.jp-RenderedImage img")
        figures = [shown.nth(i).get_attribute("src") or "" for i in range(shown.count())]
        assert sum(1 for src in figures if src) >= n_explorers
        explorers = page.locator(".jp-OutputArea-output img.widget-image")
        record["reopened_explorer_views"] = explorers.count()
        if explorers.count():
            explorers.last.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "reopened-explorer.png"))
        browser.close()
    (shots / "measurements.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record))


#: The lesson's own screens, screenshot after a run-all: (notebook, marker in the cell's
#: source, screenshot name). 02's ranked-list primer and 07's loop run from the student's parts.
LESSON_SCREENS = {
    "02_source_baseline.ipynb": [("show_ranked(model0", "ranked-lists-primer")],
    "07_the_whole_loop.ipynb": [("for t in range(1, lab.cfg.n_iter + 1):", "the-loop"),
                                ("after adaptation (your loop)", "ranked-lists-after")],
}
CELL_INDEX_JS = """(marker) => window.jupyterapp.shell.currentWidget.content.widgets
  .findIndex(c => c.model.sharedModel.getSource().includes(marker))"""


@pytest.mark.parametrize("name", sorted(LESSON_SCREENS), ids=lambda n: n[:2])
def test_lesson_screens_and_folded_readings_in_a_real_browser(name, lab_url):
    """Run all: no error; each lesson screen is screenshot; every run's reading is folded
    (the text hidden) until its summary is clicked, and then shown."""
    from playwright.sync_api import sync_playwright

    shots = _fresh_shots(f"{name[:2]}-lesson")
    args = ["--no-sandbox"] if os.getuid() == 0 else []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        page, _seconds = _open_and_run_all(browser, lab_url, name, f"lesson{name[:2]}")
        assert page.evaluate(ERRORS_JS) == []
        for marker, shot in LESSON_SCREENS[name]:
            index = page.evaluate(CELL_INDEX_JS, marker)
            assert index >= 0, f"{name}: no cell holds {marker!r}"
            cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
            cell.scroll_into_view_if_needed()
            outputs = cell.locator(".jp-OutputArea-output")
            assert outputs.count() > 0, f"{name}: the cell of {marker!r} shows nothing"
            cell.screenshot(path=str(shots / f"{shot}.png"))
        folds = page.locator(".jp-OutputArea-output details")
        assert folds.count() >= 2, f"{name}: the run's readings are not folded"
        fold = folds.first
        fold.scroll_into_view_if_needed()
        body = fold.locator("p").first
        assert fold.get_attribute("open") is None and not body.is_visible()
        page.screenshot(path=str(shots / "reading-folded.png"))
        fold.locator("summary").click()
        page.wait_for_function("(el) => el.open", arg=fold.element_handle(), timeout=5000)
        assert body.is_visible() and body.inner_text().strip()
        page.screenshot(path=str(shots / "reading-open.png"))
        browser.close()
