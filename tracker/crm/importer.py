"""CSV import of contacts: a header row, ``email`` required, every unknown column an attribute.

The file is read twice, streaming, so nothing is half-imported and memory stays flat whatever its
size: the first pass proves it is UTF-8 (or names the line and byte that is not, and nothing is
written); the second parses it with the csv module and upserts in batches (one bulk read of what
exists, one insert per batch). A physical line over ``MAX_LINE_BYTES`` is never held in memory:
its row is rejected with its line number, as is any row that is malformed, has the wrong number
of fields, a bad address or an unknown status. Rows of one address are merged in file order, so
importing a file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tracker.control.db import ControlPlane
from tracker.crm.contacts import ContactUpdate, Outcome, clean_tags, upsert_contacts
from tracker.errors import OdnosError
from tracker.store.base import EventStore

MAX_LINE_BYTES = 1 << 20
BATCH_ROWS = 10_000
KNOWN = ("email", "first_name", "last_name", "status")
_READ = 1 << 16


class CsvUnreadable(OdnosError):
    """The file as a whole cannot be imported (missing, not UTF-8, no usable header); nothing was."""

    code = "bad_csv"


@dataclass(frozen=True)
class LineNote:
    line: int
    text: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[LineNote] = field(default_factory=list)
    notes: list[LineNote] = field(default_factory=list)  # accepted rows whose consent was kept

    @property
    def taken(self) -> int:
        return self.created + self.updated + self.unchanged


def _lines(handle: BinaryIO) -> Iterator[bytes | None]:
    """Physical lines with their endings; None for a line over the limit, which is skipped unread."""
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:
                rest = handle.readline(_READ)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
            continue
        yield line


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise CsvUnreadable(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CsvUnreadable(f"{path} is a folder; give the CSV file's path") from None
    except OSError as exc:
        raise CsvUnreadable(f"cannot read {path}: {exc.strerror}") from None


def check_encoding(path: Path) -> None:
    """Raise CsvUnreadable naming the first line and byte that are not UTF-8; read nothing else."""
    offset = 0
    with _open(path) as handle:
        for number, line in enumerate(_lines(handle), start=1):
            if line is None:
                continue
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = line[exc.start:exc.start + 1].hex()
                raise CsvUnreadable(
                    f"{path}: line {number}, byte {exc.start + 1} (byte {offset + exc.start + 1} of the "
                    f"file, 0x{bad}) is not valid UTF-8; save the file as UTF-8 (\"CSV UTF-8\" in "
                    "spreadsheet programs) and import it again") from None
            offset += len(line)


class _Records:
    """csv records with the physical line each started on and why it is unusable, if it is."""

    def __init__(self, handle: BinaryIO) -> None:
        self.too_long: set[int] = set()
        self._number = 0
        self._reader = csv.reader(self._text(handle), strict=True)

    def _text(self, handle: BinaryIO) -> Iterator[str]:
        for line in _lines(handle):
            self._number += 1
            if line is None:
                self.too_long.add(self._number)
                yield "\n"
            else:
                yield line.decode("utf-8-sig" if self._number == 1 else "utf-8")

    def __iter__(self) -> Iterator[tuple[int, list[str] | None, str]]:
        start = 1
        while True:
            try:
                fields, problem = next(self._reader), ""
            except StopIteration:
                return
            except csv.Error as exc:
                fields, problem = None, f"malformed CSV ({exc})"
            end = self._reader.line_num
            long_line = next((n for n in range(start, end + 1) if n in self.too_long), None)
            if long_line is not None:
                fields, problem = None, f"line {long_line} is longer than {MAX_LINE_BYTES:,} bytes"
            yield start, fields, problem
            start = end + 1


def _header(path: Path, fields: list[str] | None, problem: str) -> list[str]:
    if fields is None:
        raise CsvUnreadable(f"{path}: the header row is unusable: {problem}")
    names = [name.strip() for name in fields]
    lowered = [name.lower() if name.lower() in KNOWN else name for name in names]
    if "email" not in lowered:
        raise CsvUnreadable(f"{path}: the header row has no email column (it has: "
                            f"{', '.join(names)[:200]}); the first row must name the columns, "
                            "one of them email")
    for position, name in enumerate(lowered, start=1):
        if not name:
            raise CsvUnreadable(f"{path}: column {position} of the header row has no name")
        if lowered.count(name) > 1:
            raise CsvUnreadable(f"{path}: the header row names the column {name!r} twice")
    return lowered


def _update(header: list[str], fields: list[str], tags: Sequence[str]) -> ContactUpdate:
    values = dict(zip(header, (value.strip() for value in fields), strict=True))
    status = values.pop("status", "").lower() or None
    return ContactUpdate(
        email=values.pop("email"), first_name=values.pop("first_name", "") or None,
        last_name=values.pop("last_name", "") or None, status=status,
        attrs={key: value for key, value in values.items() if value}, tags=tuple(tags))


def import_csv(store: EventStore, control: ControlPlane, keys: Sequence[str], path: Path, *,
               tags: Sequence[str] = (), batch_rows: int = BATCH_ROWS,
               progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import the contacts of a CSV file; CsvUnreadable (nothing imported) when it cannot be read."""
    tags = clean_tags(tags)
    check_encoding(path)
    report = ImportReport()
    batch: list[tuple[int, ContactUpdate]] = []

    def flush() -> None:
        results = upsert_contacts(store, control, keys, [u for _, u in batch], source="import")
        for (line, _), result in zip(batch, results, strict=True):
            if result.outcome is Outcome.refused:
                report.rejected.append(LineNote(line, result.reason))
                continue
            setattr(report, result.outcome.value, getattr(report, result.outcome.value) + 1)
            if result.reason:
                report.notes.append(LineNote(line, result.reason))
        batch.clear()
        if progress is not None:
            progress(report.rows)

    with _open(path) as handle:
        records = iter(_Records(handle))
        header = None
        for line, fields, problem in records:
            if header is None:
                if fields is not None and not any(f.strip() for f in fields):
                    continue  # blank lines before the header
                header = _header(path, fields, problem)
                continue
            if fields is not None and not any(f.strip() for f in fields):
                continue  # a blank line is no row
            report.rows += 1
            if fields is None:
                report.rejected.append(LineNote(line, problem))
            elif len(fields) != len(header):
                report.rejected.append(LineNote(line, f"has {len(fields)} fields, the header has "
                                                      f"{len(header)}"))
            else:
                batch.append((line, _update(header, fields, tags)))
                if len(batch) >= batch_rows:
                    flush()
        if header is None:
            raise CsvUnreadable(f"{path} is empty: expected a header row naming the columns, one of "
                                "them email")
        if batch:
            flush()
    report.rejected.sort(key=lambda note: note.line)
    return report
