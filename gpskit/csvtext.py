"""CSV written one way everywhere (predictions, pairs, plans, split exports): RFC 4180.

Rows end in CRLF, so the csv module quotes every field that holds a CR or LF (pandas'
default LF ending leaves a lone CR in a file name unquoted, and a reader splits the row
there). Spreadsheets, pandas, DuckDB and Hugging Face ``datasets`` read it as it is.
"""

from __future__ import annotations

import pandas as pd


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text, every field that needs quotes quoted."""
    text: str = frame.to_csv(index=False, lineterminator="\r\n")
    return text
