"""Settings are declared once; each is documented in the README and shown by `topicfeed config`."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from server import create_app
from server.cli import main as cli
from server.settings import SETTINGS

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.name for s in SETTINGS])
def test_setting_is_documented(setting):
    assert f"`{setting.name.lower()}`" in README


def test_sources_in_order(tmp_path, monkeypatch):
    instance = tmp_path / "i"
    instance.mkdir()
    (instance / "config.toml").write_text('site_title = "From TOML"\ncache_max_age = 60\n')
    monkeypatch.setenv("TOPICFEED_CACHE_MAX_AGE", "120")
    app = create_app({"RENDER_CACHE_MB": 7}, instance)
    assert (app.config["SITE_TITLE"], app.config["CACHE_MAX_AGE"], app.config["RENDER_CACHE_MB"]) == ("From TOML", 120, 7)
    out = CliRunner().invoke(cli, ["config", "--instance", str(instance)]).output
    for setting in SETTINGS:
        assert f"{setting.name.lower()} = " in out


def test_unknown_or_invalid_settings_are_named(tmp_path):
    instance = tmp_path / "i"
    instance.mkdir()
    (instance / "config.toml").write_text('sitetitle = "typo"\n')
    with pytest.raises(ValueError, match="unknown setting.*SITETITLE"):
        create_app({}, instance)
    with pytest.raises(ValueError, match="api_access. must be"):
        create_app({"API_ACCESS": "open"}, tmp_path / "j")
