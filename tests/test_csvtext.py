"""Any text in a CSV field reads back as it was, one row per row."""

from __future__ import annotations

import csv
import io

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gpskit.csvtext import csv_text

FIELD = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(names=st.lists(FIELD, min_size=1, max_size=6))
def test_any_name_round_trips(names: list[str]) -> None:
    frame = pd.DataFrame({"path": names, "latitude": [39.95 + i for i in range(len(names))]})
    text = csv_text(frame)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["path", "latitude"]
    assert [r[0] for r in rows[1:]] == names
    back = pd.read_csv(io.StringIO(text, newline=""), dtype={"path": str}, keep_default_na=False)
    assert len(back) == len(names) and back.latitude.tolist() == frame.latitude.tolist()


def test_a_carriage_return_in_a_name_is_quoted() -> None:
    text = csv_text(pd.DataFrame({"path": ["a\rb.jpg"], "x": [1]}))
    assert '"a\rb.jpg"' in text
