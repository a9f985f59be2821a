"""One settings object, loaded once: defaults, then rhetoric.toml, then RHETORIC_* environment, then CLI flags."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from rhetoric.errors import ConfigError

CONFIG_FILE = "rhetoric.toml"
SOURCE_KINDS = ("folder", "feed", "urls")


@dataclass(frozen=True)
class SourceSpec:
    """One place articles come from.

    kind: "folder" (location is a directory), "feed" (location is an RSS/Atom URL)
    or "urls" (urls lists article pages). outlet names the publisher where the
    source itself does not say; manifest is an optional CSV for a folder.
    """

    kind: str
    location: str = ""
    outlet: str | None = None
    manifest: str | None = None
    urls: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """A short name for messages and run summaries."""
        if self.kind == "urls":
            return f"urls[{self.outlet or len(self.urls)}]"
        return self.location


@dataclass(frozen=True)
class Settings:
    """Everything a run needs; passed down, never read from globals."""

    root: Path = Path(".")
    db_url: str = ""
    out_dir: Path = Path("outputs")
    models_dir: Path = Path("models")
    labels_dir: Path = Path("labels")
    sources: tuple[SourceSpec, ...] = ()
    max_bytes: int = 5_000_000
    http_timeout: float = 20.0
    user_agent: str = "rhetoric/0.1 (+https://github.com/rhetoric-project/rhetoric; news framing research)"
    near_duplicate_threshold: float = 0.8
    batch_size: int = 2500
    # processes that prepare (clean, split, sign) a run's articles, the run's own included; 0: one per core
    workers: int = 0
    fetch_retries: int = 2
    retry_backoff: float = 2.0
    # internal addresses fetching may reach anyway: "host" (any port) or "host:port", e.g. "127.0.0.1:8080"
    allow_private: tuple[str, ...] = ()
    # seconds a run waits for another run writing to the same store before it skips (0: skip at once)
    lock_wait: float = 120.0
    # named groups of outlets charted together, e.g. ("Russian state media", ("RT", "TASS"))
    outlet_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        """Settings built in code are held to the bounds of those read from files: no path bypasses them."""
        for name in _CHECKED:
            _checked(name, getattr(self, name), "Settings")
        object.__setattr__(self, "allow_private", _checked("allow_private", self.allow_private, "Settings"))

    @property
    def state_dir(self) -> Path:
        """The git-ignored folder for the default store and run state."""
        return self.root / ".rhetoric"

    def resolved_db_url(self) -> str:
        """The store URL: the configured one, or a SQLite file in the state folder."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.state_dir / 'rhetoric.db').resolve()}"


_ENV_KEYS = {
    "RHETORIC_DB": "db_url",
    "RHETORIC_OUT": "out_dir",
    "RHETORIC_MODELS": "models_dir",
    "RHETORIC_LABELS": "labels_dir",
    "RHETORIC_MAX_BYTES": "max_bytes",
    "RHETORIC_HTTP_TIMEOUT": "http_timeout",
}
_PATH_FIELDS = {"out_dir", "models_dir", "labels_dir"}
_RANGES = {
    "near_duplicate_threshold": (0.0, 1.0, "a similarity above 0 and at most 1 (default 0.8)"),
    "http_timeout": (0.0, 3600.0, "a number of seconds above 0 and at most 3600 (default 20)"),
    "max_bytes": (1, 10**10, "a number of bytes from 1 to 10,000,000,000 (default 5,000,000)"),
    "fetch_retries": (0, 20, "a whole number from 0 to 20 (default 2)"),
    "retry_backoff": (0.0, 3600.0, "a number of seconds from 0 to 3600 (default 2)"),
    "batch_size": (1, 10**7, "a whole number from 1 to 10,000,000 (default 2500)"),
    "workers": (0, 64, "a whole number from 0 (one per core) to 64 (default 0)"),
    "lock_wait": (0.0, 86400.0, "a number of seconds from 0 (skip at once) to 86400 (default 120)"),
}
_POSITIVE = {"near_duplicate_threshold", "http_timeout"}
# every setting with a type or range to check, wherever its value came from
_CHECKED = (*_RANGES, "user_agent")
# "int" and "float" as text: under `from __future__ import annotations` a field's type is a string
_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?$")
_TOML_KEYS = {
    "db": "db_url",
    "out": "out_dir",
    "models": "models_dir",
    "labels": "labels_dir",
    "max_bytes": "max_bytes",
    "http_timeout": "http_timeout",
    "user_agent": "user_agent",
    "near_duplicate_threshold": "near_duplicate_threshold",
    "batch_size": "batch_size",
    "workers": "workers",
    "fetch_retries": "fetch_retries",
    "retry_backoff": "retry_backoff",
    "allow_private": "allow_private",
    "lock_wait": "lock_wait",
}


def load_settings(
    root: Path | str = ".",
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    extra_sources: tuple[SourceSpec, ...] = (),
) -> Settings:
    """Build the settings: defaults, then ROOT/rhetoric.toml, then RHETORIC_* variables, then overrides.

    Sources from the file come first; extra_sources (the CLI's --source) add to them.
    When neither names a source, ROOT/seeds is the default.
    """
    root = Path(root)
    env = os.environ if env is None else env
    values: dict[str, Any] = {"root": root}
    sources: list[SourceSpec] = []

    config_path = root / CONFIG_FILE
    if config_path.is_file():
        file_values, sources = _read_config_file(config_path)
        values.update(file_values)
    for var, name in _ENV_KEYS.items():
        if env.get(var):
            values[name] = _coerce(name, env[var], var)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value, f"--{name}")

    sources.extend(extra_sources)
    if not sources:
        sources = [SourceSpec(kind="folder", location=str(root / "seeds"))]
    values["sources"] = tuple(sources)
    for name in _PATH_FIELDS:
        path = Path(values.get(name, getattr(Settings, name)))
        values[name] = path if path.is_absolute() else root / path
    return Settings(**values)


def folder_source(path: str | Path) -> SourceSpec:
    """A SourceSpec for a folder named on the command line."""
    return SourceSpec(kind="folder", location=str(path))


def cli_source(value: str | Path) -> SourceSpec:
    """A SourceSpec for a --source value: an http(s) address is an RSS/Atom feed, anything else a folder."""
    text = str(value)
    if text.startswith(("http://", "https://")):
        return SourceSpec(kind="feed", location=text)
    return folder_source(text)


def allow_entry(entry: str) -> tuple[str, int | None]:
    """(host, port or None) of an allow_private entry: "host", "host:port", "[v6]" or "[v6]:port".

    Raises:
        ValueError: the entry is not of that form.
    """
    text = entry.strip().lower()
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 address in brackets is [address] or [address]:port")
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, None  # a name, an IPv4 address or a bare IPv6 address
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"port {port!r} is not a number from 1 to 65535")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if not _HOST_NAME.match(host):
            raise ValueError(f"{host!r} is not a host name or an IP address") from None
    return host, int(port) if port else None


def _coerce(name: str, value: Any, where: str, text: bool = True) -> Any:
    """A setting's value converted and checked; text (environment, flags) is read as the field's type."""
    kind = _FIELD_TYPES.get(name)
    if text and isinstance(value, str) and kind in ("int", "float"):
        try:
            value = int(value.strip()) if kind == "int" else float(value.strip())
        except ValueError:
            pass  # _checked names the value as found
    value = _checked(name, value, where)
    return Path(value) if name in _PATH_FIELDS else value


def _checked(name: str, value: Any, where: str) -> Any:
    """The value when its type and range are right for the setting; ConfigError naming `where` otherwise."""
    kind = _FIELD_TYPES.get(name)
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}: expected a whole number for {name}, found {value!r}")
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))
                            or not math.isfinite(value)):
        raise ConfigError(f"{where}: expected a number for {name}, found {value!r}")
    if name in _RANGES:
        low, high, wording = _RANGES[name]
        if not low <= value <= high or (name in _POSITIVE and value == 0):
            raise ConfigError(f"{where}: {name} must be {wording}, found {value!r}")
    if name == "user_agent" and not (isinstance(value, str) and value.strip()):
        raise ConfigError(f"{where}: user_agent must be a non-empty string, found {value!r}")
    if name in _PATH_FIELDS | {"db_url"} and not isinstance(value, (str, Path)):
        raise ConfigError(f"{where}: expected a path or address for {name}, found {value!r}")
    if name == "allow_private":
        return _allow_list(value, where)
    return value


def _allow_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f'{where}: allow_private must be a list of "host" or "host:port" strings, '
                          f'e.g. ["127.0.0.1:8080"], found {value!r}')
    for entry in value:
        try:
            if not isinstance(entry, str):
                raise ValueError("not a string")
            allow_entry(entry)
        except ValueError as exc:
            raise ConfigError(f'{where}: allow_private entry {entry!r} is not "host" or "host:port" ({exc}); '
                              'write e.g. "127.0.0.1:8080", "intranet.example" or "[::1]:8080"') from None
    return tuple(e.strip() for e in value)


def _read_config_file(path: Path) -> tuple[dict[str, Any], list[SourceSpec]]:
    try:  # utf-8-sig: Windows editors start a UTF-8 file with a byte-order mark
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax at that line") from None

    values: dict[str, Any] = {}
    settings_table = data.get("settings", {})
    if not isinstance(settings_table, dict):
        raise ConfigError(f"{path}: [settings] must be a table")
    for key, value in settings_table.items():
        if key not in _TOML_KEYS:
            known = ", ".join(sorted(_TOML_KEYS))
            raise ConfigError(f"{path}: unknown key settings.{key}; expected one of {known}")
        values[_TOML_KEYS[key]] = _coerce(_TOML_KEYS[key], value, f"{path}: settings.{key}", text=False)

    unknown = set(data) - {"settings", "source", "outlet_groups"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown table {sorted(unknown)[0]!r}; expected [settings], [[source]] and [outlet_groups] entries"
        )
    values["outlet_groups"] = _outlet_groups(path, data.get("outlet_groups", {}))
    raw_sources = data.get("source", [])
    if not isinstance(raw_sources, list):
        raise ConfigError(f"{path}: 'source' must be written as [[source]] entries")
    sources = [_parse_source(path, i, entry) for i, entry in enumerate(raw_sources)]
    return values, sources


def _outlet_groups(path: Path, table: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """[outlet_groups]: a name = a list of outlet names, e.g. "Russian state media" = ["RT", "TASS"]."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [outlet_groups] must be a table of name = [outlets]")
    groups = []
    for name, outlets in table.items():
        if not isinstance(outlets, list) or not outlets or not all(isinstance(o, str) and o.strip() for o in outlets):
            raise ConfigError(f'{path}: outlet_groups.{name}: expected a list of outlet names, e.g. ["RT", "TASS"]')
        groups.append((str(name), tuple(o.strip() for o in outlets)))
    return tuple(groups)


def _parse_source(path: Path, index: int, entry: Any) -> SourceSpec:
    where = f"{path}: source[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table with a 'kind' key")
    allowed = {"kind", "path", "url", "urls", "outlet", "manifest"}
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key; expected one of {', '.join(sorted(allowed))}")
    kind = entry.get("kind")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}.kind: expected one of {', '.join(SOURCE_KINDS)}, found {kind!r}")
    outlet = entry.get("outlet")
    if outlet is not None and (not isinstance(outlet, str) or not outlet.strip()):
        raise ConfigError(f"{where}.outlet: expected a non-empty string, found {outlet!r}")
    if kind == "folder":
        folder = entry.get("path")
        if not isinstance(folder, str) or not folder:
            raise ConfigError(f"{where}.path: a folder source needs path = \"DIR\"")
        resolved = Path(folder) if Path(folder).is_absolute() else path.parent / folder
        manifest = entry.get("manifest")
        if manifest is not None:
            manifest = str(Path(manifest) if Path(manifest).is_absolute() else path.parent / manifest)
        return SourceSpec(kind="folder", location=str(resolved), outlet=outlet, manifest=manifest)
    if kind == "feed":
        url = entry.get("url")
        if isinstance(url, str) and url.lower().startswith("file:"):
            raise ConfigError(f"{where}.url: {url!r} is a local file, and feeds are fetched over http(s) only; "
                              "serve it over http, or put its articles in a folder source")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url: a feed source needs url = \"http(s)://...\", found {url!r}")
        return SourceSpec(kind="feed", location=url, outlet=outlet)
    urls = entry.get("urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"{where}.urls: a urls source needs urls = [\"https://...\", ...]")
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise ConfigError(f"{where}.urls: not an http(s) address: {bad[0]!r}")
    return SourceSpec(kind="urls", urls=tuple(urls), outlet=outlet)
