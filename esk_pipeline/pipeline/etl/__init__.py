"""ETL: read any incoming log file, normalise and clean its texts, deduplicate, account for it all.

    from esk_pipeline.pipeline.etl import ETLConfig, ETLProcessor
    result = ETLProcessor(ETLConfig()).load_file("logs.xlsx")  # .cleaned, .rejected, .stats

Where things live: `models` (config, result, stats, error, rejection reasons), `processor`
(`ETLProcessor`) and `worker` (one load in a limited child process for the API; import it from
`etl.worker` directly) are public. Private: `_readers` (which format a file is, then
`_encoding`, `_csv_reader`, `_json_reader` with `_json_text`, `_binary_readers`), `_columns`
(finding the text, timestamp and user columns), `_normalise` (text cleaning), `_fields` (ts,
user_id, metadata), `_dedup` (exact and near duplicates).

Untrusted files are bounded before they are parsed: at most `max_columns` columns, an XLSX's or
Parquet file's unpacked size at most `max_unpacked_bytes`, JSON nesting at most `MAX_JSON_DEPTH`
levels and numbers at most `MAX_JSON_NUMBER_CHARS` characters.
"""

from esk_pipeline.pipeline.etl._json_text import MAX_JSON_DEPTH, MAX_JSON_NUMBER_CHARS
from esk_pipeline.pipeline.etl.models import (
    CLEANED_COLUMNS,
    REJECT_REASONS,
    REJECTED_COLUMNS,
    ETLConfig,
    ETLError,
    ETLResult,
    ETLStats,
    RejectReason,
)
from esk_pipeline.pipeline.etl.processor import ETLProcessor

__all__ = [
    "CLEANED_COLUMNS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_NUMBER_CHARS",
    "REJECTED_COLUMNS",
    "REJECT_REASONS",
    "ETLConfig",
    "ETLError",
    "ETLProcessor",
    "ETLResult",
    "ETLStats",
    "RejectReason",
]
