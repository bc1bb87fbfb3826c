"""RAMSES parameter files (Fortran namelists): read values, and set values in a template.

A RAMSES namelist is free text followed by groups `&NAME ... /` of `key=value` assignments;
values are numbers (`1.5d-3`), logicals (`.true.`), quoted strings, comma-separated lists,
repeats (`3*1`), and single elements (`x_center(2)=0.4`). `!` starts a comment. Group and key
names are case-insensitive and returned in lower case.

Parameters are named "GROUP/key" or "GROUP/key(i)" (i counted from 1, as in Fortran).

Editing works on the text: `set_values` replaces the value of an existing assignment and keeps
everything else (comments, layout, other groups), or adds the assignment to its group.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["NamelistError", "format_value", "parameter_value", "read_namelist", "set_values"]

Value = bool | int | float | str

_KEY_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_%]*)\s*(\(\s*\d+\s*\))?\s*=(?!=)")
_TOKEN_RE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[^\s,]+")
_PARAMETER_RE = re.compile(r"^\s*&?([A-Za-z_]\w*)\s*/\s*([A-Za-z_]\w*)\s*(?:\(\s*(\d+)\s*\))?\s*$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$")


class NamelistError(ValueError):
    """A namelist that cannot be parsed, or a parameter it does not hold."""


@dataclass(frozen=True)
class _Assignment:
    group: str
    key: str
    index: int | None  # 1-based element, or None for the whole variable
    key_start: int
    value_start: int
    value_end: int  # end of the value text, before any trailing comment


@dataclass(frozen=True)
class _Group:
    name: str
    start: int  # offset of '&'
    close: int  # offset of the closing '/'
    assignments: tuple[_Assignment, ...]


def _mask(text: str) -> str:
    """`text` with comments blanked and the insides of strings replaced, offsets preserved."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            j = i + 1
            while j < n:
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:  # doubled quote inside a string
                        j += 2
                        continue
                    break
                if text[j] == "\n":  # unterminated string: stop at the line end
                    break
                j += 1
            for k in range(i + 1, min(j, n)):
                out[k] = "x"
            i = j + 1
        elif c == "!":
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        else:
            i += 1
    return "".join(out)


def _groups(text: str) -> list[_Group]:
    masked = _mask(text)
    groups = []
    for match in re.finditer(r"(?m)^[ \t]*&([A-Za-z_]\w*)", masked):
        name = match.group(1).lower()
        if name == "end":
            continue
        body_start = match.end()
        close = masked.find("/", body_start)
        if close < 0:
            line = text.count("\n", 0, match.start()) + 1
            raise NamelistError(f"group &{match.group(1)} (line {line}) has no closing '/'")
        body = masked[body_start:close]
        keys = list(_KEY_RE.finditer(body))
        assignments = []
        for k, key in enumerate(keys):
            start = body_start + key.end()
            stop = body_start + (keys[k + 1].start() if k + 1 < len(keys) else len(body))
            value = masked[start:stop].rstrip(" \t\r\n,")
            index = int(key.group(2).strip("() \t")) if key.group(2) else None
            assignments.append(_Assignment(name, key.group(1).lower(), index,
                                           body_start + key.start(), start, start + len(value)))
        groups.append(_Group(name, match.start(), close, tuple(assignments)))
    return groups


def _scalar(token: str) -> Value:
    if token[0] in "'\"":
        return token[1:-1].replace(token[0] * 2, token[0])
    low = token.lower()
    if low in (".true.", ".t.", "t", ".false.", ".f.", "f"):
        return low in (".true.", ".t.", "t")
    try:
        return int(token)
    except ValueError:
        pass
    if _FLOAT_RE.match(token):
        return float(token.replace("d", "e").replace("D", "e"))
    return token


def _parse_values(text: str) -> list[Value]:
    values: list[Value] = []
    for token in _TOKEN_RE.findall(text):
        repeat = re.match(r"^(\d+)\*(.+)$", token)
        if repeat and token[0] not in "'\"":
            values += [_scalar(repeat.group(2))] * int(repeat.group(1))
        else:
            values.append(_scalar(token))
    return values


def read_namelist(text: str) -> dict[str, dict[str, Value | list[Value | None]]]:
    """Parse namelist text: {group: {key: value or list of values}}, names in lower case.

    A variable assigned one value maps to it; a list (or elements set one by one) maps to a
    list, with None for elements never set. A group given twice is merged, later wins.
    """
    result: dict[str, dict] = {}
    for group in _groups(text):
        entries = result.setdefault(group.name, {})
        for a in group.assignments:
            values = _parse_values(text[a.value_start:a.value_end])
            if a.index is None:
                entries[a.key] = values[0] if len(values) == 1 else values
                continue
            current = entries.get(a.key)
            current = [] if current is None else current if isinstance(current, list) \
                else [current]
            needed = a.index - 1 + len(values)
            current = current + [None] * (needed - len(current))
            current[a.index - 1:needed] = values
            entries[a.key] = current
    return result


def _parse_parameter(name: str) -> tuple[str, str, int | None]:
    match = _PARAMETER_RE.match(name)
    if not match:
        raise NamelistError(f"parameter {name!r} is not of the form 'GROUP/key' or "
                            f"'GROUP/key(i)'")
    index = int(match.group(3)) if match.group(3) else None
    if index == 0:
        raise NamelistError(f"parameter {name!r}: elements are counted from 1")
    return match.group(1).lower(), match.group(2).lower(), index


def parameter_value(namelist: Mapping[str, Mapping], name: str) -> Value:
    """The value of parameter "GROUP/key" or "GROUP/key(i)" in a parsed namelist."""
    group, key, index = _parse_parameter(name)
    if group not in namelist:
        raise NamelistError(f"no group &{group.upper()} for parameter {name!r}")
    if key not in namelist[group]:
        raise NamelistError(f"no {key!r} in &{group.upper()} for parameter {name!r}")
    value = namelist[group][key]
    if index is None:
        if isinstance(value, list):
            raise NamelistError(f"parameter {name!r} is a list of {len(value)}; name one "
                                f"element, e.g. {name}(1)")
        return value
    values = value if isinstance(value, list) else [value]
    if index > len(values) or values[index - 1] is None:
        raise NamelistError(f"parameter {name!r}: element {index} is not set")
    return values[index - 1]


def format_value(value: Value | Sequence[Value]) -> str:
    """A Python value as namelist text: .true., 3, 0.25 (shortest exact), 'text', lists."""
    if isinstance(value, bool | np.bool_):
        return ".true." if value else ".false."
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise NamelistError(f"cannot write non-finite value {value!r} to a namelist")
        return repr(float(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Sequence):
        return ",".join(format_value(v) for v in value)
    raise NamelistError(f"cannot write {type(value).__name__} value {value!r} to a namelist")


def set_values(text: str, values: Mapping[str, Value | Sequence[Value]]) -> str:
    """Namelist text with parameters set, {"GROUP/key" or "GROUP/key(i)": value}.

    An existing assignment of exactly that key (and element) gets the new value, its comment
    kept; otherwise `key=value` is added at the end of the group, and a missing group is added
    at the end of the text.
    """
    for name, value in values.items():
        group_name, key, index = _parse_parameter(name)
        rendered = format_value(value)
        target = f"{key}({index})" if index is not None else key
        groups = [g for g in _groups(text) if g.name == group_name]
        if not groups:
            text = text.rstrip("\n") + f"\n\n&{group_name.upper()}\n{target}={rendered}\n/\n"
            continue
        matches = [a for g in groups for a in g.assignments if a.key == key and a.index == index]
        if matches:
            a = matches[-1]
            text = text[:a.value_start] + rendered + text[a.value_end:]
        else:
            close = groups[-1].close
            line_start = text.rfind("\n", 0, close) + 1
            if text[line_start:close].strip():  # '/' shares a line with values: break it
                text = text[:close] + f"\n{target}={rendered}\n" + text[close:]
            else:
                text = text[:line_start] + f"{target}={rendered}\n" + text[line_start:]
    return text
