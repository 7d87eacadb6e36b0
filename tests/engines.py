"""What "the same signals" means across engines: equal counts, floats equal to 1e-9 relative.

Floats are not required to be bit-identical: Spark adds up a group's values in the order its partitions
deliver them, DuckDB in its own, and floating-point addition is not associative, so the last bits of a
sum can differ.
"""

from __future__ import annotations

import math

import pandas as pd

COUNT_COLUMNS = (
    "sentiment_responses",
    "sentiment_excluded",
    "support_tickets",
    "support_open_backlog",
    "champions_in_seat",
    "champion_in_seat",
    "integrations_active",
    "integrations_change_90d",
)
RELATIVE_TOLERANCE = 1e-9
# Slopes that are zero in exact arithmetic come out as about 1e-18 when the sums run in another order.
ABSOLUTE_TOLERANCE = 1e-12


def assert_same(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(duck.columns)
    assert len(duck) > 0
    assert spark["account_id"].tolist() == duck["account_id"].tolist()
    assert spark["as_of"].tolist() == duck["as_of"].tolist()
    for column in duck.columns:
        if column in ("account_id", "as_of"):
            continue
        if column == "usage_measure":
            assert spark[column].fillna("").tolist() == duck[column].fillna("").tolist()
            continue
        for row, (ours, theirs) in enumerate(zip(duck[column], spark[column], strict=True)):
            where = f"{column} at {duck['account_id'][row]} {duck['as_of'][row]}: duckdb {ours!r}, spark {theirs!r}"
            if math.isnan(ours) or math.isnan(theirs):
                assert math.isnan(ours) and math.isnan(theirs), where
            elif column in COUNT_COLUMNS:
                assert ours == theirs, where
            else:
                assert math.isclose(ours, theirs, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE), (
                    where
                )
