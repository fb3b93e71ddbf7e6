"""``icp-worker score``: score a prospect list (a purchased list, event attendees) with no CRM at all."""

from __future__ import annotations

import codecs
import csv
import difflib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import typer

from connectors.files.cells import escape_formula
from worker.cli.common import STATE, UserError, err, handle_errors, out, print_json, progress_bar
from worker.icp.model import IcpSpec
from worker.icp.scoring import Scorer
from worker.icp.spec import load_icp
from worker.normalize import DEFAULT_KINDS, NormalizeConfig, normalize_values
from worker.quality import QualityReport, summarize_rows

#: Column headers (lower case, letters and digits only) recognised for each canonical attribute.
ALIASES = {
    "industry": ["industry", "sector", "vertical"],
    "employees": ["employees", "numberofemployees", "employeecount", "headcount", "companysize", "size"],
    "annual_revenue": ["annualrevenue", "revenue"],
    "country": ["country", "billingcountry", "hqcountry", "companycountry"],
    "state": ["state", "billingstate", "province"],
    "founded_year": ["foundedyear", "founded", "yearfounded"],
    "funding_stage": ["fundingstage", "funding", "lastfundingstage"],
    "tech_stack": ["techstack", "techstackc", "technologies", "technology"],
}
OUTPUT_COLUMNS = ["fit_score", "fit_tier", "fit_coverage", "fit_reasons"]
#: Delimiters tried when ``--delimiter`` is not given, and how they are named in messages.
DELIMITERS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
WARNING_COLUMNS = ["line", "column", "attribute", "kind", "raw_value", "message"]
#: Structure warnings (short rows, extra cells) printed one by one; the rest are counted.
SHOWN_WARNINGS = 10


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def column_mapping(headers: list[str], attributes: set[str], explicit: dict[str, str]) -> dict[str, str]:
    """CSV column → canonical attribute: explicit ``--map`` first, then known aliases, then exact names."""
    mapping = {col: attr for col, attr in explicit.items() if col in headers}
    for col in headers:
        if col in mapping:
            continue
        k = _key(col)
        for attr, names in ALIASES.items():
            if k in names and attr not in mapping.values():
                mapping[col] = attr
                break
        else:
            if col in attributes and col not in mapping.values():
                mapping[col] = col
    return mapping


def _hint(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_maps(maps: list[str], headers: list[str], wanted: set[str], source: Path) -> dict[str, str]:
    """``--map COLUMN=attribute`` options, refused when the column is not in the header or the attribute is
    neither read by the ICP nor a canonical attribute."""
    known = sorted(wanted | set(DEFAULT_KINDS))
    explicit: dict[str, str] = {}
    for m in maps:
        if "=" not in m:
            raise UserError(f"--map {m!r}: expected COLUMN=attribute")
        col, attr = (part.strip() for part in m.split("=", 1))
        if col not in headers:
            raise UserError(
                f"--map {m!r}: {source} has no column {col!r}{_hint(col, headers)} "
                f"(columns: {', '.join(headers)})"
            )
        if attr not in known:
            raise UserError(f"--map {m!r}: unknown attribute {attr!r}{_hint(attr, known)} (the ICP reads: "
                            f"{', '.join(sorted(wanted))})")  # fmt: skip
        explicit[col] = attr
    return explicit


def _delimiter_option(text: str | None) -> str | None:
    if text is None:
        return None
    if text.lower() in ("tab", "\\t", "\t"):
        return "\t"
    if len(text) != 1:
        raise UserError(f"--delimiter {text!r}: one character, or 'tab'")
    return text


def sniff_delimiter(first_line: str) -> str:
    """The delimiter of a header line: the most frequent of ``DELIMITERS`` outside quotes (``,`` on a tie)."""
    unquoted = re.sub(r'"[^"]*"', "", first_line)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _name(encoding: str) -> str:
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _not_encoded(source: Path, exc: UnicodeDecodeError, raw: bytes, encoding: str) -> UserError:
    line = raw[: exc.start].count(b"\n") + 1 if raw else None
    where = f" on line {line}" if line else ""
    byte = exc.object[exc.start] if isinstance(exc.object, bytes | bytearray) else None
    shown = f"byte 0x{byte:02x}" if byte is not None else "a byte"
    return UserError(
        f"{source}: {shown}{where} is not {_name(encoding)} text; the file is probably Windows-1252 or "
        "Latin-1: pass --encoding cp1252 (or latin-1)"
    )


@dataclass
class Reading:
    """How the input is read, and what was wrong with its shape."""

    encoding: str
    delimiter: str
    sniffed: bool
    structure: list[tuple[int, str]] = field(default_factory=list)
    structure_count: int = 0

    def note(self, line: int, message: str) -> None:
        self.structure_count += 1
        if len(self.structure) < SHOWN_WARNINGS:
            self.structure.append((line, message))


def open_input(source: Path, encoding: str | None, delimiter: str | None) -> tuple[IO[str], Reading]:
    encoding = encoding or "utf-8-sig"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise UserError(f"--encoding {encoding!r}: unknown encoding (e.g. utf-8, cp1252, latin-1)") from None
    with open(source, "rb") as fh:
        head = fh.read(1 << 16)
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            raise _not_encoded(source, exc, head, encoding) from None
        text = head[: exc.start].decode(encoding)
    chosen = _delimiter_option(delimiter)
    first_line = text.splitlines()[0] if text else ""
    reading = Reading(encoding, chosen or sniff_delimiter(first_line), chosen is None)
    return open(source, newline="", encoding=encoding), reading  # noqa: SIM115 - closed by the caller


def rows_of(handle: IO[str], reading: Reading, source: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each data row; the header is the first row. An unclosed quote ends the reading
    with a warning naming the line it opened on."""
    reader = csv.reader(handle, delimiter=reading.delimiter, strict=True)
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = f"{exc}: a quote opened on line {line} is never closed; rows from here are not read"
            reading.note(line, message)
            return
        except UnicodeDecodeError as exc:
            raise _not_encoded(source, exc, b"", reading.encoding) from None
        yield line, cells
        line = reader.line_num + 1


@handle_errors
def score(
    input_csv: Path = typer.Argument(..., exists=True, dir_okay=False, help="Prospect list (CSV)."),
    icp: Path = typer.Option(..., "--icp", exists=True, dir_okay=False, help="ICP YAML file."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the scored CSV."),
    maps: list[str] = typer.Option([], "--map", help="COLUMN=attribute, e.g. --map 'Head count=employees'."),
    connection: str = typer.Option(None, "--connection", help="Use this connection's industry synonyms."),
    encoding: str = typer.Option(
        None, "--encoding", help="Encoding of INPUT_CSV (default utf-8; e.g. cp1252, latin-1)."
    ),
    delimiter: str = typer.Option(
        None, "--delimiter", help="Cell delimiter: one character or 'tab' (default: detected: , ; tab |)."
    ),
    warnings_csv: Path = typer.Option(
        None, "--warnings", dir_okay=False, help="Also write every unreadable value, with its line, to a CSV."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Score every row of INPUT_CSV; the output is the input plus fit score, tier, coverage and reasons.

    Ends with a data-quality summary: values that could not be read, short rows and extra cells."""
    spec = load_icp(icp)
    if output.resolve() == input_csv.resolve():
        raise UserError("the output file must not be the input file")
    synonyms = STATE.connection(connection).industry_synonyms if connection else {}
    handle, reading = open_input(input_csv, encoding, delimiter)
    with handle:
        summary = _score_rows(handle, reading, input_csv, output, spec, maps, synonyms, warnings_csv, as_json)
    if as_json:
        print_json(summary)


def _header(rows: Iterator[tuple[int, list[str]]], source: Path) -> list[str]:
    first = next(rows, None)
    headers = [h.lstrip("\ufeff").strip() for h in (first[1] if first else [])]
    if not any(headers):
        raise UserError(f"{source}: no header row")
    clash = [c for c in OUTPUT_COLUMNS if c in headers]
    if clash:
        raise UserError(f"{source}: already has column(s) {', '.join(clash)}; rename them first")
    return headers


def _score_rows(
    handle: IO[str], reading: Reading, source: Path, output: Path, spec: IcpSpec, maps: list[str],
    synonyms: dict[str, str], warnings_csv: Path | None, as_json: bool,
) -> dict[str, Any]:  # fmt: skip
    wanted = {c.attribute for c in spec.criteria} | {d.attribute for d in spec.disqualifiers}
    rows = rows_of(handle, reading, source)
    headers = _header(rows, source)
    mapping = column_mapping(headers, wanted, parse_maps(maps, headers, wanted, source))
    _say_how_read(source, reading, headers, mapping, wanted)
    norm, scorer = NormalizeConfig(industry_synonyms=synonyms), Scorer(spec)
    index = {col: headers.index(col) for col in mapping}
    column_of = {attr: col for col, attr in mapping.items()}
    tiers: Counter[str] = Counter()
    present: Counter[str] = Counter()
    problems: list[tuple[str, str, str, str]] = []
    count = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="", encoding="utf-8") as dst, progress_bar(not as_json) as progress:
        writer = csv.writer(dst)
        writer.writerow([escape_formula(h) for h in headers + OUTPUT_COLUMNS])
        for line, cells in rows:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(headers):
                rest = "the rest are missing" if len(cells) < len(headers) else "the extra ones are ignored"
                reading.note(line, f"{len(cells)} cells, the header has {len(headers)}: {rest}")
            raw = {mapping[col]: (cells[i] if i < len(cells) else None) for col, i in index.items()}
            attributes, found = normalize_values(raw, norm)
            present.update(k for k in attributes if k in column_of or k == "region")
            problems.extend((p.kind, p.attribute, p.raw, f"line {line}") for p in found)
            result = scorer.score(attributes)
            tiers[result.tier] += 1
            count += 1
            padded = cells + [""] * (len(headers) - len(cells))
            writer.writerow(
                [escape_formula(c) for c in padded[: len(headers)]]
                + [result.score, result.tier, f"{result.coverage:.2f}", escape_formula(result.compact(255))]
            )
            if count % 1000 == 0:
                progress("score", 1000)
    report = summarize_rows("prospect", problems, present, count, spec)
    if warnings_csv is not None:
        _write_warnings(warnings_csv, problems, column_of)
    _say_quality(reading, report, warnings_csv)
    if not as_json:
        out.print(
            f"scored {count:,} rows → {output}: " + ", ".join(f"{t} {n:,}" for t, n in tiers.most_common()),
            highlight=False,
        )
    return {
        "rows": count, "output": str(output), "tiers": dict(tiers), "columns": mapping,
        "encoding": reading.encoding, "delimiter": reading.delimiter,
        "structure_warnings": reading.structure_count, "quality": report.as_dict(),
    }  # fmt: skip


def _say_how_read(
    source: Path, reading: Reading, headers: list[str], mapping: dict[str, str], wanted: set[str]
) -> None:
    how = "detected" if reading.sniffed else "--delimiter"
    shown = DELIMITERS.get(reading.delimiter, repr(reading.delimiter))
    err.print(
        f"reading {source}: {_name(reading.encoding)}, delimiter {shown} ({how}), {len(headers)} columns",
        highlight=False,
        markup=False,
    )
    unmapped = sorted(wanted - set(mapping.values()) - {"region"})
    for attr in unmapped:
        err.print(
            f"warning: no column for attribute {attr!r}: every row is missing it (use --map COLUMN={attr})",
            highlight=False,
        )


def _say_quality(reading: Reading, report: QualityReport, warnings_csv: Path | None) -> None:
    for line, message in reading.structure:
        err.print(f"warning: line {line}: {message}", highlight=False, markup=False)
    if reading.structure_count > len(reading.structure):
        err.print(f"warning: {reading.structure_count - len(reading.structure):,} more rows like these",
                  highlight=False)  # fmt: skip
    if not report.unreadable_values:
        return
    err.print(f"{report.unreadable_values:,} values could not be read (left missing):", highlight=False)
    for a in report.attributes:
        if a.values:
            shown = "; ".join(f"{v.raw!r} ×{v.count:,} ({', '.join(v.places[:3])})" for v in a.values[:5])
            err.print(f"  {a.attribute}: {shown}", highlight=False, markup=False)
    if warnings_csv is None:
        err.print("  every one, with its line: --warnings FILE.csv", highlight=False)
    else:
        err.print(f"  every one, with its line: {warnings_csv}", highlight=False, markup=False)


def _write_warnings(path: Path, problems: list[tuple[str, str, str, str]], column_of: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(WARNING_COLUMNS)
            for kind, attr, raw, where in problems:
                message = "impossible, left missing" if kind == "impossible" else "cannot read, left missing"
                cells = [where.removeprefix("line "), column_of.get(attr, ""), attr, kind, raw, message]
                writer.writerow([escape_formula(c) for c in cells])
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
