"""How both units read their environment variables: one parser per kind, one error."""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot run with."""


def number(env: Mapping[str, str], name: str, default: float, kind: type = int, minimum: float = 0):
    """env[name] as an int (or float, with kind=float) of at least minimum; default when unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        article = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {article}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def comma_separated(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def require(env: Mapping[str, str], *names: str) -> None:
    missing = [name for name in names if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(f"missing required environment variables: {', '.join(missing)}")
