"""The JupyterLab settings the kit's notebooks rely on, written by ``make lab``.

``saveState`` of the widget manager stores the explorers' widget state (controls and the
last figure) in the notebook when it is saved, so a notebook reopened without its kernel
shows each explorer as it was left, not "Error displaying widget: model not found" (the
widget renderer has no fallback once the notebook is trusted). Viewers that ignore widget
state (an untrusted notebook, nbconvert to HTML, GitHub) show the PNG each explorer adds to
its output (:meth:`tcul_helpers.teaching.widgets.Explorer._repr_mimebundle_`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..infra.atomic_files import write_json

#: ``{plugin id: {setting: value}}``, JupyterLab's overrides.json format.
SETTINGS: dict[str, dict] = {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}


def overrides_path(prefix: str | Path = sys.prefix) -> Path:
    """``<prefix>/share/jupyter/lab/settings/overrides.json``: JupyterLab's application-wide
    defaults for the environment at ``prefix`` (a user's own settings still win)."""
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def write_overrides(prefix: str | Path = sys.prefix) -> Path:
    """Merge :data:`SETTINGS` into the overrides of the environment at ``prefix``."""
    path = overrides_path(prefix)
    try:
        current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError:
        current = {}  # a damaged overrides file is replaced by a valid one
    if not isinstance(current, dict):
        current = {}
    for plugin, values in SETTINGS.items():
        current[plugin] = {**current.get(plugin, {}), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, current, indent=2)
    return path


def write_user_settings(settings_dir: str | Path) -> None:
    """Write :data:`SETTINGS` as user settings under ``settings_dir`` (what
    ``JUPYTERLAB_SETTINGS_DIR`` names; the browser test's private JupyterLab)."""
    for plugin, values in SETTINGS.items():
        package, name = plugin.split(":")
        path = Path(settings_dir) / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, values, indent=2)


if __name__ == "__main__":
    print(f"JupyterLab settings for the kit: {write_overrides()}")
