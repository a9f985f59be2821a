"""Settings: defaults, rhetoric.toml, environment, overrides, and errors that name the key."""

from pathlib import Path

import pytest

from rhetoric.config import Settings, load_settings
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
    ('[settings]\nmax_bytes = "lots"\n', r"settings\.max_bytes: expected a whole number"),
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
    with pytest.raises(ConfigError, match="RHETORIC_MAX_BYTES: expected a whole number"):
        load_settings(tmp_path, env={"RHETORIC_MAX_BYTES": "big"})


# Every bounded setting: too low, too high, wrong type, and a good value, from rhetoric.toml.
BOUNDS = [
    ("batch_size", "0", "20000000", "2.5", "500"),
    ("batch_size", "-1", "10000001", '"100"', "10000000"),
    ("max_bytes", "0", "20000000000", "1.5", "1"),
    ("fetch_retries", "-1", "21", "true", "0"),
    ("http_timeout", "0", "3601", '"fast"', "0.5"),
    ("http_timeout", "-1", "86400", "nan", "3600"),
    ("retry_backoff", "-0.1", "3600.5", "[1]", "0"),
    ("near_duplicate_threshold", "0", "1.01", '"high"', "1"),
    ("workers", "-1", "65", "1.5", "2"),
]
CASES = [(name, value, outcome) for name, low, high, wrong, good in BOUNDS
         for value, outcome in ((low, "range"), (high, "range"), (wrong, "type"), (good, "ok"))]


@pytest.mark.parametrize("name, value, outcome", CASES, ids=[f"{n}={v}" for n, v, _ in CASES])
def test_every_bound_is_enforced_in_the_file(tmp_path, name, value, outcome):
    (tmp_path / "rhetoric.toml").write_text(f"[settings]\n{name} = {value}\n", encoding="utf-8")
    if outcome == "ok":
        assert getattr(load_settings(tmp_path, env={}), name) == float(value)
        return
    expected = rf"settings\.{name}: {name} must be " if outcome == "range" else rf"settings\.{name}: expected a"
    with pytest.raises(ConfigError, match=expected):
        load_settings(tmp_path, env={})


@pytest.mark.parametrize("variable, value, message", [
    ("RHETORIC_HTTP_TIMEOUT", "-1", "RHETORIC_HTTP_TIMEOUT: http_timeout must be a number of seconds above 0"),
    ("RHETORIC_HTTP_TIMEOUT", "soon", "RHETORIC_HTTP_TIMEOUT: expected a number for http_timeout, found 'soon'"),
    ("RHETORIC_MAX_BYTES", "0", "RHETORIC_MAX_BYTES: max_bytes must be a number of bytes from 1"),
    ("RHETORIC_MAX_BYTES", "2.5", "RHETORIC_MAX_BYTES: expected a whole number for max_bytes, found '2.5'"),
])
def test_every_bound_is_enforced_in_the_environment(tmp_path, variable, value, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env={variable: value})
    assert load_settings(tmp_path, env={variable: "7"}).__getattribute__(variable[9:].lower()) == 7


@pytest.mark.parametrize("values, message", [
    ({"batch_size": 0}, "Settings: batch_size must be a whole number from 1"),
    ({"batch_size": 2.5}, "Settings: expected a whole number for batch_size, found 2.5"),
    ({"http_timeout": -1}, "Settings: http_timeout must be a number of seconds above 0"),
    ({"fetch_retries": True}, "Settings: expected a whole number for fetch_retries"),
    ({"user_agent": ""}, "Settings: user_agent must be a non-empty string"),
    ({"allow_private": ["127.0.0.1:99999"]}, "Settings: allow_private entry '127.0.0.1:99999'"),
])
def test_settings_built_in_code_are_checked_too(values, message):
    with pytest.raises(ConfigError, match=message):
        Settings(**values)


def test_overrides_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="--http_timeout: http_timeout must be"):
        load_settings(tmp_path, env={}, overrides={"http_timeout": "-1"})


def test_allow_private_lists_hosts_with_or_without_a_port(tmp_path):
    (tmp_path / "rhetoric.toml").write_text(
        '[settings]\nallow_private = ["127.0.0.1:8080", "intranet.example", "[::1]:8443", "fd00::5"]\n')
    assert load_settings(tmp_path, env={}).allow_private == ("127.0.0.1:8080", "intranet.example", "[::1]:8443",
                                                             "fd00::5")


@pytest.mark.parametrize("value, message", [
    ('"127.0.0.1"', r"allow_private must be a list of \"host\" or \"host:port\" strings"),
    ('["127.0.0.1:0"]', r"allow_private entry '127\.0\.0\.1:0' is not .*port '0' is not a number from 1 to 65535"),
    ('["http://127.0.0.1:8080"]', r"allow_private entry 'http://127\.0\.0\.1:8080' is not"),
    ('["host:port"]', r"port 'port' is not a number"),
    ('["bad host"]', r"'bad host' is not a host name or an IP address"),
    ('[8080]', r"allow_private entry 8080 is not .*not a string"),
])
def test_bad_allow_private_entries_are_refused_by_name(tmp_path, value, message):
    (tmp_path / "rhetoric.toml").write_text(f"[settings]\nallow_private = {value}\n")
    with pytest.raises(ConfigError, match=rf"rhetoric\.toml: settings\.allow_private: .*{message}"):
        load_settings(tmp_path, env={})


def test_a_file_feed_is_refused_in_one_line(tmp_path):
    (tmp_path / "rhetoric.toml").write_text('[[source]]\nkind = "feed"\nurl = "file:///etc/passwd"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={})
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'rhetoric.toml'}: source[0].url: ")
    assert "'file:///etc/passwd' is a local file, and feeds are fetched over http(s) only" in message


def test_a_byte_order_mark_is_accepted_in_toml_files(tmp_path):
    from rhetoric.labels import load_frames

    (tmp_path / "rhetoric.toml").write_bytes("\ufeff[settings]\nbatch_size = 7\n".encode("utf-8"))
    assert load_settings(tmp_path, env={}).batch_size == 7
    (tmp_path / "frames.toml").write_bytes(
        '\ufeff[[frame]]\nname = "a"\ntitle = "A"\ndescription = "d"\n'.encode("utf-8"))
    assert [f.name for f in load_frames(tmp_path)] == ["a"]


def test_every_setting_is_shown_commented_in_new_and_shipped_project_files():
    from rhetoric.config import _TOML_KEYS
    from rhetoric.project import CONFIG_TEMPLATE

    shipped = (Path(__file__).resolve().parents[2] / "rhetoric.toml").read_text(encoding="utf-8")
    for text in (CONFIG_TEMPLATE, shipped):
        shown = {line[2:].split("=")[0].strip() for line in text.splitlines() if line.startswith("# ") and "=" in line}
        assert sorted(set(_TOML_KEYS) - shown) == []
