"""The profiles' CSV files as text and cells: what a supervisor's spreadsheet export may hold, checked.

The file is read as UTF-8 (a BOM tolerated), comment (#) and blank lines are skipped, every record
keeps its line number, and cells are checked as numbers or quarter-hour times; what the columns mean
is profile.py's part. Every error is a ProfileError naming the file and line, so a supervisor can fix
the spreadsheet.
"""
from __future__ import annotations

import csv
import io
import math
from importlib import resources
from pathlib import Path


class ProfileError(ValueError):
    """A day or tier CSV that cannot be used; the message names the file and line."""


def read_file(path: str | Path) -> str:
    """The text of a profile CSV file; ProfileError when it cannot be read or is not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")  # -sig: spreadsheets often write a BOM
    except OSError as exc:
        raise ProfileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: is not UTF-8 text") from None


def shipped_file(name: str) -> str:
    """The text of a profile shipped with the package (callqueue/planning/profiles/`name`)."""
    return resources.files("callqueue.planning").joinpath("profiles", name).read_text(encoding="utf-8")


def records(text: str, name: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line number, row) pairs; comment lines (#) and blank lines are skipped."""
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise ProfileError(f"{name}: is empty (expected a header line)")
    reader = csv.reader(io.StringIO("\n".join(line for _, line in lines)))
    parsed = list(reader)
    header = [h.strip() for h in parsed[0]]
    if len(set(header)) != len(header):
        raise ProfileError(f"{name}, line {lines[0][0]}: a column is named twice in {','.join(header)}")
    rows = []
    # Not strict: a quoted cell spanning lines gives fewer records than lines (the line numbers after it are then
    # off by one); a bare ValueError from a strict zip would be no better than that.
    for (n, _), cells in zip(lines[1:], parsed[1:], strict=False):
        if len(cells) != len(header):
            raise ProfileError(f"{name}, line {n}: {len(cells)} fields, the header has {len(header)}")
        rows.append((n, dict(zip(header, cells, strict=True))))  # as many cells as columns: checked just above
    return header, rows


def number(text: str, where: str, column: str, *, integer: bool = False, allow_empty: bool = False) -> float | None:
    """A cell as a finite number >= 0 (a whole one if `integer`); None for an empty cell if `allow_empty`."""
    text = text.strip()
    if text == "" and allow_empty:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ProfileError(f"{where}: {column} must be a number, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ProfileError(f"{where}: {column} must be a finite number >= 0, not {text!r}")
    if integer and value != int(value):
        raise ProfileError(f"{where}: {column} must be a whole number, not {text!r}")
    return value


def quarter_index(text: str, where: str) -> int:
    """A `start` cell ("HH:MM" on the quarter hour) as the index of its 15-minute interval from midnight."""
    hh, sep, mm = text.strip().partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or len(mm) != 2:
        raise ProfileError(f"{where}: start must be HH:MM, not {text!r}")
    minutes = int(hh) * 60 + int(mm)
    if minutes >= 24 * 60 or minutes % 15:
        raise ProfileError(f"{where}: start {text!r} is not a quarter hour of the day (00:00 .. 23:45)")
    return minutes // 15
