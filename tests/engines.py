"""What "the same signals" means across engines: equal counts, floats equal to 1e-9 relative.

Floats are not required to be bit-identical. The sentiment score sums recency weights (powers of 0.5),
which each engine computes with its own math library and adds up in its own order, so its last bits
differ: by at most 2.4e-16 relative on the conformance data. Every other value came out identical.
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
                assert math.isnan(ours), where
                assert math.isnan(theirs), where
            elif column in COUNT_COLUMNS:
                assert ours == theirs, where
            else:
                assert math.isclose(ours, theirs, rel_tol=RELATIVE_TOLERANCE), where
