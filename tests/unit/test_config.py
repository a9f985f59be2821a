"""Settings: defaults, rhetoric.toml, environment, overrides, and errors that name the key."""

import pytest

from rhetoric.config import load_settings
from rhetoric.errors import ConfigError


def test_defaults_point_into_the_project(tmp_path):
    settings = load_settings(tmp_path, env={})
    assert settings.out_dir == tmp_path / "outputs"
    assert settings.models_dir == tmp_path / "models"
    assert [s.location for s in settings.sources] == [str(tmp_path / "seeds")]
    assert settings.resolved_db_url().endswith("/.rhetoric/rhetoric.db")


def test_precedence_file_then_env_then_flags(tmp_path):
    (tmp_path / "rhetoric.toml").write_text('[settings]\ndb = "sqlite:///file.db"\nout = "charts"\n'
                                            'max_bytes = 100\n')
    settings = load_settings(tmp_path, env={"RHETORIC_DB": "sqlite:///env.db"})
    assert (settings.db_url, settings.out_dir, settings.max_bytes) == (
        "sqlite:///env.db", tmp_path / "charts", 100)
    settings = load_settings(tmp_path, overrides={"db_url": "sqlite:///flag.db"},
                             env={"RHETORIC_DB": "sqlite:///env.db"})
    assert settings.db_url == "sqlite:///flag.db"


def test_sources_from_file_and_command_line_add_up(tmp_path):
    from rhetoric.config import folder_source

    (tmp_path / "rhetoric.toml").write_text(
        '[[source]]\nkind = "folder"\npath = "articles"\noutlet = "Mine"\n\n'
        '[[source]]\nkind = "feed"\nurl = "http://127.0.0.1:9/feed.xml"\noutlet = "Feed"\n\n'
        '[[source]]\nkind = "urls"\nurls = ["http://127.0.0.1:9/a"]\noutlet = "Pages"\n')
    settings = load_settings(tmp_path, env={}, extra_sources=(folder_source("/data/more"),))
    assert [(s.kind, s.outlet) for s in settings.sources] == [
        ("folder", "Mine"), ("feed", "Feed"), ("urls", "Pages"), ("folder", None)]
    assert settings.sources[0].location == str(tmp_path / "articles")


@pytest.mark.parametrize("content, message", [
    ('[settings]\ncolour = "red"\n', r"unknown key settings\.colour"),
    ('[settings]\nmax_bytes = "lots"\n', r"settings\.max_bytes: expected a number"),
    ('[[source]]\nkind = "ftp"\n', r"source\[0\]\.kind: expected one of folder, feed, urls"),
    ('[[source]]\nkind = "feed"\n', r"source\[0\]\.url: a feed source needs url"),
    ('[[source]]\nkind = "folder"\n', r"source\[0\]\.path: a folder source needs path"),
    ('[[source]]\nkind = "urls"\nurls = ["ftp://x"]\n', r"source\[0\]\.urls: not an http"),
    ('[[source]]\nkind = "feed"\nurl = "http://x"\nschedule = 1\n', r"source\[0\]\.schedule: unknown key"),
    ('[settings\n', r"not valid TOML"),
])
def test_config_errors_name_the_key(tmp_path, content, message):
    (tmp_path / "rhetoric.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env={})


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="RHETORIC_MAX_BYTES: expected a number"):
        load_settings(tmp_path, env={"RHETORIC_MAX_BYTES": "big"})
