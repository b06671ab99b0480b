"""`make lab`'s JupyterLab settings: merged into the environment's overrides.json."""

from __future__ import annotations

import json

from tcul_helpers.teaching import lab_settings


def test_overrides_are_merged_and_a_damaged_file_is_replaced(tmp_path):
    path = lab_settings.overrides_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "dark"},
                                "@jupyter-widgets/jupyterlab-manager:plugin": {"x": 1}}))
    assert lab_settings.write_overrides(tmp_path) == path
    data = json.loads(path.read_text())
    assert data["@jupyterlab/apputils-extension:themes"] == {"theme": "dark"}
    assert data["@jupyter-widgets/jupyterlab-manager:plugin"] == {"x": 1, "saveState": True}
    path.write_text("{not json")
    lab_settings.write_overrides(tmp_path)
    assert json.loads(path.read_text()) == lab_settings.SETTINGS


def test_user_settings_use_jupyterlabs_file_layout(tmp_path):
    lab_settings.write_user_settings(tmp_path)
    f = tmp_path / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings"
    assert json.loads(f.read_text()) == {"saveState": True}
