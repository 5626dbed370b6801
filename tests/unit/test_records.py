"""Records (store.records) hold exactly their tables' columns, in the tables' order: a column
added to a table and not to its record would never be read nor written by the hot paths."""

from __future__ import annotations

import pytest

from sandbox.store.records import (
    ORDER_DATA_COLUMNS,
    CallbackRec,
    EventRec,
    OrderRec,
    PartnerRec,
    Record,
)

LEFT_OUT = {OrderRec: set(ORDER_DATA_COLUMNS)}  # read only where needed, never by records


@pytest.mark.parametrize("rec", [OrderRec, PartnerRec, EventRec, CallbackRec])
def test_a_record_has_its_tables_columns(rec: type[Record]) -> None:
    table = [c.name for c in rec.TABLE.columns if c.name not in LEFT_OUT.get(rec, set())]
    assert list(rec.columns()) == table
