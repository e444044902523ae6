"""File ingestion: JSON Lines files (or stdin), one event per line, dead letters to a file."""

import base64
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from consumers.pipeline import RawRecord, process_batch
from ledger.application import BatchCounts, DeadLetter, LedgerApp

DEFAULT_BATCH_SIZE = 1000
MAX_LINE_BYTES = 4 * 1024 * 1024  # longer lines are cut here and dead-lettered, never held whole


class DeadLetterFile:
    """Appends dead letters as JSON lines: source, line, reason and the original bytes.

    The file holds records of the input, so a new one is made readable by no more than the
    input is (`mode`: its permission bits; owner only for stdin). An existing file keeps its
    own."""

    def __init__(self, path: Path, source: str, mode: int = 0o600) -> None:
        self.path = path
        self.source = source
        self.mode = mode
        self.written = 0

    def __call__(self, letters: Sequence[DeadLetter]) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self.mode)
        with open(descriptor, "a", encoding="utf-8") as out:
            for letter in letters:
                out.write(json.dumps(_dead_letter_line(self.source, letter), sort_keys=True))
                out.write("\n")
                self.written += 1


def _dead_letter_line(source: str, letter: DeadLetter) -> dict[str, object]:
    line: dict[str, object] = {"source": source, "line": letter.position, "reason": letter.reason}
    try:
        line["original"] = letter.value.decode("utf-8")
    except UnicodeDecodeError:
        line["original_base64"] = base64.b64encode(letter.value).decode("ascii")
    return line


def read_lines(stream: BinaryIO) -> Iterator[RawRecord]:
    """Numbered non-blank lines. A line over MAX_LINE_BYTES is read that far, and its record
    says its whole size (it is over the contract's limit, and refused)."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES)
        if not line:
            return
        number += 1
        whole_size = None
        if not line.endswith(b"\n") and len(line) == MAX_LINE_BYTES:
            whole_size = _skip_rest(stream, line)
            if whole_size <= len(line):  # all that was left was the line's ending
                line, whole_size = line[:whole_size], None
        value = line.rstrip(b"\r\n") if whole_size is None else line
        if whole_size is not None or value.strip():
            yield RawRecord(number, value, whole_size)


def _skip_rest(stream: BinaryIO, start: bytes) -> int:
    """Read past the rest of the line `start` began, holding none of it; the line's size
    without its ending."""
    size, tail = len(start), start[-2:]
    while True:
        rest = stream.readline(MAX_LINE_BYTES)
        size += len(rest)
        tail = (tail + rest)[-2:]
        if not rest or rest.endswith(b"\n"):
            return size - (len(tail) - len(tail.rstrip(b"\r\n")))


def ingest_stream(
    app: LedgerApp,
    stream: BinaryIO,
    source: str,
    dead_letters: DeadLetterFile,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[BatchCounts], None] | None = None,
) -> BatchCounts:
    """Ingest one stream of JSON lines in batches; returns the totals."""
    totals = BatchCounts()
    batch: list[RawRecord] = []

    def flush() -> None:
        counts = process_batch(app, source, batch, dead_letters)
        totals.add(counts)
        batch.clear()
        if on_batch is not None:
            on_batch(totals)

    for record in read_lines(stream):
        batch.append(record)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return totals
