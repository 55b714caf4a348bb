"""Settings as the outside names them: ``DOCPIPE_*`` variables and ``--section-field`` flags.

Reads them into the one settings object (``load_settings``: flag, then variable, then
default) and renders settings back into variables for a child process (``to_env``) or
for display (``describe``). The sections themselves are in ``infra.settings``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Union
from typing import get_args
from typing import get_origin
from typing import get_type_hints

from infra.settings import Settings
from infra.settings import SettingsError
from infra.settings import env_name

# Short forms of settings' variables, as the docs name them: the short form is read when
# the full name is not set; both set to different values is an error.
SHORT_FORMS = {"DOCPIPE_CODEC_MODE": "DOCPIPE_CODEC"}


@dataclass(frozen=True, kw_only=True)
class _Setting:
    """One field of one section, and the names it goes by outside."""

    section: str
    name: str
    hint: Any
    default: Any
    secret: bool

    @property
    def env(self) -> str:
        return env_name(self.section, self.name)

    @property
    def flag(self) -> str:
        return f"--{self.section}-{self.name}".replace("_", "-")

    @property
    def dest(self) -> str:
        """Where argparse keeps the flag's value."""
        return f"setting__{self.section}__{self.name}"


def _settings() -> Iterator[_Setting]:
    """Every setting, section by section, in the order the dataclasses declare them."""
    sections = get_type_hints(Settings)
    for section in dataclasses.fields(Settings):
        hints = get_type_hints(sections[section.name])
        for f in dataclasses.fields(sections[section.name]):
            yield _Setting(
                section=section.name,
                name=f.name,
                hint=hints[f.name],
                default=f.default,
                secret=bool(f.metadata.get("secret")),
            )


def _convert(raw: str, hint: Any, name: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if raw == "":
            return None
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return _convert(raw, inner, name)
    if origin is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        if hint is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
    except ValueError:
        raise SettingsError(f"{name}: cannot read {raw!r} as {hint.__name__}") from None
    return raw


def setting_names() -> list[tuple[str, str, Any, bool]]:
    """Every setting as (env variable, CLI flag, default, is_secret), for docs and help."""
    return [(s.env, s.flag, s.default, s.secret) for s in _settings()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--section-field`` flag per setting to a CLI parser."""
    group = parser.add_argument_group("settings (also DOCPIPE_* environment variables)")
    for setting in _settings():
        group.add_argument(
            setting.flag, dest=setting.dest, metavar="VALUE", default=None, help=argparse.SUPPRESS
        )


def load_settings(
    env: Mapping[str, str] | None = None, args: argparse.Namespace | None = None
) -> Settings:
    """Build the settings from CLI flags, then ``DOCPIPE_*`` variables, then defaults.

    Raises:
        SettingsError: a value cannot be converted to its field's type, or cannot work.
    """
    env = os.environ if env is None else env
    flags = vars(args) if args is not None else {}
    values: dict[str, dict[str, Any]] = {f.name: {} for f in dataclasses.fields(Settings)}
    for setting in _settings():
        raw = flags.get(setting.dest)
        if raw is None:
            raw = _env_value(env, setting.env)
        if raw is not None:
            values[setting.section][setting.name] = _convert(raw, setting.hint, setting.env)
    hints = get_type_hints(Settings)
    return Settings(**{section: hints[section](**given) for section, given in values.items()})


def _env_value(env: Mapping[str, str], env_name: str) -> str | None:
    """A setting's variable, or its short form (``SHORT_FORMS``) when that alone is set.

    Raises:
        SettingsError: both are set, to different values.
    """
    raw = env.get(env_name)
    short = SHORT_FORMS.get(env_name)
    short_raw = env.get(short) if short else None
    if short_raw is None:
        return raw
    if raw is not None and raw != short_raw:
        raise SettingsError(f"{short}={short_raw!r} and {env_name}={raw!r}: set one of them")
    return short_raw


def to_env(settings: Settings) -> dict[str, str]:
    """Render settings as ``DOCPIPE_*`` variables, to hand them to a child process."""
    out: dict[str, str] = {}
    for setting in _settings():
        value = getattr(getattr(settings, setting.section), setting.name)
        if value is None:
            out[setting.env] = ""
        elif isinstance(value, tuple):
            out[setting.env] = ",".join(value)
        elif isinstance(value, bool):
            out[setting.env] = "true" if value else "false"
        else:
            out[setting.env] = str(value)
    return out


def describe(settings: Settings) -> list[tuple[str, str]]:
    """(env variable, value) pairs for display, with secrets masked."""
    secret = {env for env, _, _, is_secret in setting_names() if is_secret}
    rendered = to_env(settings)
    return [(k, "***" if k in secret and v else v) for k, v in rendered.items()]
