"""Plain YAML scalars of a stack file typed the way the Pulumi CLI types them (yaml.v3), not PyYAML.

The Pulumi CLI (pulumi/pulumi v3.259.0, sdk/go/common/encoding/marshal.go) reads
``Pulumi.<stack>.yaml`` with ``gopkg.in/yaml.v3`` (sdk/go.mod: v3.0.1), decodes every config value
into ``any`` (sdk/go/common/resource/config/object.go, ``object.UnmarshalYAML``) and hands the
program each top-level value as text: a string as written, a bool/int/float as its JSON
(``object.MarshalString``), an object or list as JSON. yaml.v3 resolves an unquoted scalar with
YAML 1.2's rules, not YAML 1.1's (go-yaml/yaml v3, resolve.go ``resolve``):

* booleans are only ``true``/``True``/``TRUE`` and ``false``/``False``/``FALSE``: ``yes``, ``no``,
  ``on``, ``off``, ``y``, ``n`` stay strings (PyYAML's YAML 1.1 makes them booleans);
* null is ``~``, ``null``, ``Null``, ``NULL`` or nothing;
* a scalar starting with a digit or a sign is a timestamp (four digits and ``-``, in the formats
  of ``allowedTimestampFormats``), else an integer by Go's ``strconv.ParseInt(s, 0, 64)`` with
  every ``_`` removed (``0x1F``, ``0o17``, ``0b101``, and ``017`` octal), else a float when it has
  YAML's float form; ``1:30`` (YAML 1.1's base 60) is a string;
* one starting with ``.`` is a float when Go's ``strconv.ParseFloat`` reads it (``.5``, ``.inf``).

Pulumi then writes the stack back and reads it again (workspace/loaders.go,
``LoadProjectStackBytes``), so a float yaml.v3 prints without a fraction (``1e3`` → ``1000``) comes
back an integer, and a timestamp reaches the program as Go's ``time.Time.String()``
(``2024-01-02 00:00:00 +0000 UTC``).

:class:`Loader` is PyYAML's safe loader (same parser, positions and merge keys) with this
resolution in place of YAML 1.1's; :func:`go_scalar` is the rule itself.
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
from typing import Any

import yaml

GO_SCALAR_TAG = "tag:pulumi.com,2026:go-yaml-v3-plain-scalar"
_MERGE_TAG = "tag:yaml.org,2002:merge"

_MAP: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
# resolve.go: yamlStyleFloat.
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# strconv.ParseFloat of a scalar starting with "." (decimal only; hex floats start with 0x).
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
# strconv.ParseInt(s, 0, 64): base from the prefix (0x, 0o, 0b, a leading 0 for octal).
_GO_INT = re.compile(
    r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|0(?P<legacy>[0-7]*)|(?P<dec>[1-9][0-9]*))"
)
# resolve.go: allowedTimestampFormats (Go layouts: 1 or 2 digits for month, day, hour, minute,
# second; an optional fraction; the T forms need a zone, the space form has none).
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?:[Tt](?P<th>[0-9]{1,2}):(?P<tm>[0-9]{1,2}):(?P<ts>[0-9]{1,2})(?P<tf>\.[0-9]+)?"
    r"(?P<zone>Z|[-+][0-9]{2}:[0-9]{2}))"
    r"|(?: (?P<sh>[0-9]{1,2}):(?P<sm>[0-9]{1,2}):(?P<ss>[0-9]{1,2})(?P<sf>\.[0-9]+)?))?"
)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


def _go_int(text: str) -> int | None:
    m = _GO_INT.fullmatch(text)
    if m is None:
        return None
    if m["hex"] is not None:
        value = int(m["hex"], 16)
    elif m["oct"] is not None:
        value = int(m["oct"], 8)
    elif m["bin"] is not None:
        value = int(m["bin"], 2)
    elif m["legacy"] is not None:
        value = int(m["legacy"] or "0", 8)
    else:
        value = int(m["dec"])
    if m["sign"] == "-":
        value = -value
    if _INT64[0] <= value <= _INT64[1]:
        return value
    # ParseUint takes no sign.
    return value if not m["sign"] and value <= _UINT64_MAX else None


def _go_time_string(m: re.Match[str]) -> str | None:
    """Go's ``time.Time.String()`` of the timestamp (UTC unless it names another offset; a
    fixed offset has no zone name, so Go prints the offset twice)."""
    hour, minute, second, fraction = (
        (m["th"], m["tm"], m["ts"], m["tf"]) if m["th"] else (m["sh"], m["sm"], m["ss"], m["sf"])
    )
    try:
        value = datetime.datetime(
            int(m["y"]), int(m["mo"]), int(m["d"]), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None  # time.Parse refuses it: not a timestamp
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    digits = (fraction or "")[1:10].rstrip("0")
    if digits:
        text += f".{digits}"
    zone = m["zone"]
    if zone in (None, "Z", "+00:00", "-00:00"):
        return f"{text} +0000 UTC"
    offset = zone.replace(":", "")
    return f"{text} {offset} {offset}"


def _integral(value: float) -> int | float:
    """What a float becomes after Pulumi writes the stack and reads it again: yaml.v3 prints it
    with strconv.FormatFloat(f, 'g', -1, 64), so an integral one below 1e21 reads back as an int."""
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
        whole = int(value)
        if _INT64[0] <= whole <= _UINT64_MAX:
            return whole
    return value


def go_scalar(text: str) -> Any:
    """The value yaml.v3 (and Pulumi after it) gives the plain scalar ``text``."""
    if text in _MAP:
        return _MAP[text]
    hint = text[:1]
    if hint == ".":
        return _integral(float(text)) if _DOT_FLOAT.fullmatch(text) else text
    if hint and hint in "+-0123456789":
        stamp = _TIMESTAMP.fullmatch(text)
        if stamp is not None:
            as_time = _go_time_string(stamp)
            if as_time is not None:
                return as_time
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return number
        if _YAML_STYLE_FLOAT.fullmatch(plain):
            return _integral(float(plain))
    return text


def go_json_float(value: float) -> str:
    """A float as Go's encoding/json writes it (what Pulumi hands the program): the shortest
    digits, fixed notation from 1e-6 to 1e21, else exponent without a leading zero."""
    if value == 0:
        return "0"
    if 1e-6 <= abs(value) < 1e21:
        text = format(decimal.Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, _, exponent = repr(value).partition("e")
    sign = exponent[:1]
    return f"{mantissa}e{sign}{exponent[1:].lstrip('0') or '0'}"


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_Base):  # type: ignore[misc]
    """PyYAML's safe loader with yaml.v3's resolution of plain scalars (see the module doc)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _MERGE_TAG if value == "<<" else GO_SCALAR_TAG
        return super().resolve(kind, value, implicit)


def _construct_go_scalar(loader: Any, node: Any) -> Any:
    return go_scalar(loader.construct_scalar(node))


Loader.add_constructor(GO_SCALAR_TAG, _construct_go_scalar)
