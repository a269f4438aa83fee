"""Schema primitives shared by configs, profiles and the floor's settings: pydantic sections
that refuse unknown keys and non-finite numbers, durations and times of day, ids that can be
topic levels, validation messages that name the field and the need, and canonical digests."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import time
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


_ID_RE = re.compile(ID_PATTERN)


def valid_id(value: str) -> bool:
    """Site and seat ids become MQTT topic levels: no `+ # / .`, 1 to 64 characters."""
    return bool(_ID_RE.fullmatch(value))


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")


_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}


# No timer of the seat needs more; bigger values overflow waits and timestamps.
MAX_DURATION_S = 366 * 24 * 3600.0


_DURATION_NEED = "expected a duration such as 90s, 2m or 1h"


def parse_duration(value: object) -> float:
    """`0.6s`, `90s`, `2m`, `1h`, `250ms` or a bare number of seconds, as seconds."""
    seconds: float | None = None
    if isinstance(value, bool):
        raise ValueError(_DURATION_NEED)
    if isinstance(value, int) and abs(value) > MAX_DURATION_S:
        # float() of a huge int overflows; the checks below name the bound it breaks.
        seconds = 2 * MAX_DURATION_S if value > 0 else -1.0
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds is None:
        raise ValueError(f"{_DURATION_NEED}, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"{_DURATION_NEED} (a finite number), got {value!r}")
    if seconds < 0:
        raise ValueError(f"{_DURATION_NEED}, >= 0")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{_DURATION_NEED}, at most 366 days")
    return seconds


def parse_time_of_day(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = re.match(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$", value.strip())
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            return time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
    raise ValueError(f"expected a time of day HH:MM such as 08:45, got {value!r}")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("expected text without NUL characters")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]


TimeOfDay = Annotated[time, BeforeValidator(parse_time_of_day)]


Id = Annotated[str, Field(pattern=ID_PATTERN)]


# File names, device names, commands: no NUL (the OS refuses it), no novel-length values.
Text = Annotated[str, Field(max_length=4096), AfterValidator(_no_nul)]


NonEmptyText = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_no_nul)]


class Section(BaseModel):
    """A config or profile section: unknown keys are errors, values are immutable, numbers are
    finite (TOML's inf and nan are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def netloc(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def redact_url(url: str) -> str:
    """The URL with any user:password part replaced, for messages."""
    location = netloc(url)
    if "@" not in location:
        return url
    return url.replace(location, "***@" + location.rsplit("@", 1)[1], 1)


_TYPE_NEED = {
    "string_type": "expected a string (in quotes)",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number (not inf or nan)",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": 'expected a list such as ["a", "b"]',
    "model_type": "expected a table (a [section])",
    "model_attributes_type": "expected a table (a [section])",
    "dict_type": "expected a table (a [section])",
}


def _expected(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see config/seatbox.example.toml)"
    if kind == "missing":
        return "missing: this key is required"
    if kind == "string_pattern_mismatch":
        return "expected letters, digits, '_' or '-' (1 to 64), no '+ # / .'"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}"
    if kind == "value_error":
        return str(ctx.get("error", err.get("msg", "")))
    if kind in _TYPE_NEED:
        return _TYPE_NEED[kind]
    if kind == "greater_than":
        return f"expected more than {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"expected at least {_number(ctx.get('ge'))}"
    if kind == "less_than":
        return f"expected less than {ctx.get('lt')}"
    if kind == "less_than_equal":
        return f"expected at most {_number(ctx.get('le'))}"
    if kind == "string_too_short":
        return "expected a value, got an empty string"
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters"
    return f"expected a valid value ({err.get('msg', 'invalid')})"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown(value: Any) -> str:
    """A refused value as the message shows it: short, and never a URL's credentials."""
    if isinstance(value, str):
        if "://" in value:
            value = redact_url(value)
        text = repr(value if len(value) <= 80 else value[:80] + "...")
    else:
        text = repr(value)
        if len(text) > 80:
            text = text[:80] + "..."
    return f" (got {text})"


def format_validation_error(source: str, exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    lines = []
    for err in exc.errors():
        loc = [*prefix, *(str(part) for part in err["loc"])]
        section, key = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("", ".".join(loc))
        where = f"[{section}] {key}" if section else f"[{key}]"
        got = err.get("input")
        show_got = err.get("type") not in ("missing", "extra_forbidden") and not isinstance(
            got, dict
        )
        if (section == "broker" and key == "url") or "got " in _expected(err):
            show_got = False  # the reason already shows it (a URL redacted)
        need = _expected(err)
        if err.get("type") == "extra_forbidden" and len(loc) == 1:
            need = need.replace("unknown key", "unknown section")
        lines.append(f"{source}: {where}: {need}{_shown(got) if show_got else ''}")
    return "\n".join(lines)


def digest_of(data: Any) -> str:
    """12 hex digits of SHA-256 over canonical JSON: equal digests, equal values."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
