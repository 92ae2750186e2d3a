"""Hostile files: each is read in a child process with time and memory limits (see `bounded`),
so a lost bound fails the test instead of hanging the suite or eating the machine's memory.

Every case gets a clear `ETLError` naming the file, or is read correctly (UTF-16, a header
with repeated names), within seconds and a fraction of the memory the attack asks for.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest

from esk_pipeline_tests.bounded import ETL_OUTCOME, run_bounded

_OOXML = "http://schemas.openxmlformats.org"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
_DOC_RELS = f"{_OOXML}/officeDocument/2006/relationships"
_TYPE = "application/vnd.openxmlformats"
_CONTENT_TYPES = (
    f'{_XML_HEAD}<Types xmlns="{_OOXML}/package/2006/content-types">'
    f'<Default Extension="rels" ContentType="{_TYPE}-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    f'ContentType="{_TYPE}-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    f'ContentType="{_TYPE}-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    f'ContentType="{_TYPE}-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    f'{_XML_HEAD}<Relationships xmlns="{_OOXML}/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_DOC_RELS}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    f'{_XML_HEAD}<workbook xmlns="{_OOXML}/spreadsheetml/2006/main" xmlns:r="{_DOC_RELS}">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    f'{_XML_HEAD}<Relationships xmlns="{_OOXML}/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_DOC_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_DOC_RELS}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
_SHEET = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    '<row r="2"><c r="A2" t="s"><v>1</v></c></row>'
    "</sheetData></worksheet>"
)


def _xlsx_with_big_string(path: Path, string_bytes: int, filler: bytes = b"a") -> Path:
    """A minimal workbook (header "text", one row) whose row's shared string is
    `string_bytes` long; written in chunks, so the test process never holds it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in (
            ("[Content_Types].xml", _CONTENT_TYPES),
            ("_rels/.rels", _ROOT_RELS),
            ("xl/workbook.xml", _WORKBOOK),
            ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
            ("xl/worksheets/sheet1.xml", _SHEET),
        ):
            archive.writestr(name, body)
        with archive.open("xl/sharedStrings.xml", "w") as member:
            member.write(
                b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats'
                b'.org/spreadsheetml/2006/main" count="2" uniqueCount="2"><si><t>text</t></si>'
                b"<si><t>"
            )
            chunk = (filler * (1 << 20))[: 1 << 20]
            for _ in range(string_bytes >> 20):
                member.write(chunk)
            member.write(b"</t></si></sst>")
    return path


def _etl_run(setup: str, call: str, **limits: float) -> dict:
    run = run_bounded(ETL_OUTCOME + setup + "\n" + call, **limits)
    assert run.outcome is not None, f"no outcome (exit {run.returncode}): {run.stderr}"
    return run.outcome


# ----- columns -----


def test_a_million_repeated_column_names_are_refused_naming_the_count():
    outcome = _etl_run(
        "data = ('text' + ';a' * 1_000_000 + '\\nпривет мир;' + ';' * 999_999).encode()",
        "report(data, 'wide.csv')",
        seconds=30,
    )
    assert outcome["error"] == "ETLError"
    assert "wide.csv" in outcome["message"]
    assert "1000001 columns" in outcome["message"]
    assert "ETL_MAX_COLUMNS" in outcome["message"]


def test_repeated_column_names_under_the_cap_are_renamed_in_linear_time():
    # 20,000 repeats took pandas' renaming 11.5 s, 40,000 about four times that.
    outcome = _etl_run(
        "data = ('text' + ';a' * 39_999 + '\\nпривет мир' + ';x' * 39_999).encode()",
        "report(data, 'wide.csv', max_columns=50_000)",
        seconds=15,
    )
    assert outcome["rows"] == 1
    metadata = json.loads(outcome["metadata"][0])
    assert len(metadata) == 39_999
    assert {"a", "a.1", "a.39998"} <= metadata.keys()


def test_a_first_row_with_a_million_fields_more_than_the_header_is_refused_at_once():
    # pandas takes a first row's extra fields as an index: 200,000 of them took 27 s and
    # 600 MB, a million of them minutes (later rows wider than the header were always cheap).
    outcome = _etl_run(
        "data = ('text;a\\nпривет мир' + ';x' * 1_000_000 + '\\nпока мир;x\\n').encode()",
        "report(data, 'wide-row.csv')",
        seconds=20,
    )
    assert outcome["error"] == "ETLError"
    assert "wide-row.csv" in outcome["message"]
    assert "more fields than the header" in outcome["message"]


def test_json_records_with_too_many_keys_are_refused():
    outcome = _etl_run(
        "import json\n"
        "data = json.dumps([{'text': 'привет мир', **{f'k{i}': i for i in range(5000)}}]).encode()",
        "report(data, 'keys.json')",
    )
    assert outcome["error"] == "ETLError"
    assert "keys.json" in outcome["message"] and "columns" in outcome["message"]


# ----- XLSX bombs -----


def test_an_xlsx_holding_one_huge_shared_string_is_refused_before_unpacking(tmp_path):
    # 64 MB of one letter compresses about 1000x: a zip bomb's ratio, whatever the cap.
    bomb = _xlsx_with_big_string(tmp_path / "bomb.xlsx", 64 << 20)
    assert bomb.stat().st_size < 1 << 20
    outcome = _etl_run(
        f"data = open({str(bomb)!r}, 'rb').read()",
        "report(data, 'bomb.xlsx')",
        memory_mb=700,
        seconds=30,
    )
    assert outcome["error"] == "ETLError"
    assert "bomb.xlsx" in outcome["message"]
    assert "xl/sharedStrings.xml" in outcome["message"] and "zip bomb" in outcome["message"]


def test_an_xlsx_unpacking_over_the_cap_is_refused(tmp_path):
    # Incompressible-looking filler: no bomb ratio, but over the configured unpacked limit.
    workbook = _xlsx_with_big_string(tmp_path / "big.xlsx", 24 << 20, bytes(range(65, 91)) * 2)
    outcome = _etl_run(
        f"data = open({str(workbook)!r}, 'rb').read()",
        f"report(data, 'big.xlsx', max_unpacked_bytes={16 << 20})",
        memory_mb=700,
    )
    assert outcome["error"] == "ETLError"
    assert "big.xlsx" in outcome["message"] and "over the limit of 16 MB" in outcome["message"]


def test_an_xlsx_member_larger_than_it_declares_is_cut_at_its_declared_size(tmp_path):
    """zipfile never unpacks more than a member's declared size (the CRC then fails), so the
    declared sizes the cap checks bound what is actually unpacked."""
    workbook = _xlsx_with_big_string(tmp_path / "liar.xlsx", 32 << 20)
    data = bytearray(workbook.read_bytes())
    directory = data.rfind(b"PK\x01\x02", 0, data.rfind(b"sharedStrings.xml") + 1)
    assert struct.unpack_from("<I", data, directory + 24)[0] > 32 << 20  # its real size
    struct.pack_into("<I", data, directory + 24, 1024)  # the central directory's claim
    workbook.write_bytes(bytes(data))
    outcome = _etl_run(
        f"data = open({str(workbook)!r}, 'rb').read()",
        "report(data, 'liar.xlsx')",
        memory_mb=700,
    )
    assert outcome["error"] == "ETLError"
    assert "liar.xlsx" in outcome["message"] and "not a readable XLSX" in outcome["message"]


# ----- JSON -----


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("deep.json", "'[' * 100_000 + ']' * 100_000"),
        ("deep.jsonl", """'{"text": "привет мир"}\\n' + '{"a":' * 100_000 + '1' + '}' * 100_000"""),
    ],
)
def test_json_nested_100k_deep_is_an_etl_error(name, payload):
    outcome = _etl_run(f"data = ({payload}).encode()", f"report(data, {name!r})")
    assert outcome["error"] == "ETLError"
    assert name in outcome["message"] and "nested" in outcome["message"]


def test_a_5000_digit_json_number_is_an_etl_error():
    outcome = _etl_run(
        "data = ('[{\"text\": \"привет мир\", \"n\": ' + '7' * 5000 + '}]').encode()",
        "report(data, 'number.json')",
    )
    assert outcome["error"] == "ETLError"
    assert "number.json" in outcome["message"] and "5000 characters" in outcome["message"]


def test_brackets_and_digits_inside_json_strings_do_not_count():
    outcome = _etl_run(
        "import json\n"
        "data = json.dumps([{'text': 'скобки ' + '[{' * 500 + ' и цифры ' + '9' * 500}]).encode()",
        "report(data, 'strings.json', max_text_length=5000)",
    )
    assert outcome["rows"] == 1


# ----- encodings -----


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_decoded(codec):
    outcome = _etl_run(
        f"data = 'текст;дата\\nнет горячей воды третий день;2026-11-01\\n'.encode({codec!r})",
        "report(data, 'utf16.csv')",
    )
    assert outcome.get("texts") == ["нет горячей воды третий день"], outcome
    assert outcome["encoding"] == codec
