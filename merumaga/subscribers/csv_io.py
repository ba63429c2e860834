"""Reading subscriber CSV files as Japanese offices write them, and writing safe ones."""

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator

from django.utils.translation import gettext as _

# Header names accepted for each column, lower-cased: English and what Japanese Excel users type.
COLUMN_ALIASES = {
    "email": {"email", "e-mail", "mail", "email address", "メールアドレス", "メール"},
    "name": {"name", "氏名", "名前", "お名前"},
    "organisation": {"organisation", "organization", "company", "所属", "会社名", "組織"},
    "topics": {"topics", "topic", "配信種別", "購読"},
    "language": {"language", "lang", "言語"},
    "charset": {"charset", "文字コード"},
}
TOPIC_SEPARATORS = re.compile(r"[;|,\s、]+")


class CsvFormatError(ValueError):
    """The file as a whole cannot be read; row-level problems are reported per row instead."""


def decode(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was in: UTF-8 (with or without BOM), UTF-16
    with BOM, or Shift_JIS as Japanese Excel writes it (read as CP932, its Windows superset)."""
    if data.startswith(codecs.BOM_UTF8):
        candidates = [("utf-8-sig", data)]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = [("utf-16", data)]
    else:
        candidates = [("utf-8", data), ("cp932", data)]
    for encoding, raw in candidates:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise CsvFormatError(
        _("文字コードを判別できません。UTF-8 または Shift_JIS で保存したファイルを選んでください。")
    )


def read_rows(text: str) -> tuple[dict[str, int], Iterator[tuple[int, list[str]]]]:
    """The column positions found in the header, and (row number, cells) for each data row."""
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFormatError(_("ファイルが空です。")) from None
    columns: dict[str, int] = {}
    for position, cell in enumerate(header):
        label = cell.strip().lower()
        for column, aliases in COLUMN_ALIASES.items():
            if label in aliases and column not in columns:
                columns[column] = position
    if "email" not in columns:
        raise CsvFormatError(_("1行目に「email」(または「メールアドレス」) の列が見つかりません。"))

    def rows() -> Iterator[tuple[int, list[str]]]:
        # Numbered as a spreadsheet numbers its rows (the header is row 1), which is what the
        # person fixing the file sees; a quoted line break does not start a new row.
        for row_number, cells in enumerate(reader, start=2):
            if any(cell.strip() for cell in cells):
                yield row_number, cells

    return columns, rows()


def split_topics(value: str) -> list[str]:
    return [key for key in TOPIC_SEPARATORS.split(value.strip()) if key]


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A cell a spreadsheet will show as text, never run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def write_csv(out, header: list[str], rows: Iterable[Iterable]) -> None:
    """Write with a UTF-8 BOM so that Excel opens Japanese text correctly."""
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
