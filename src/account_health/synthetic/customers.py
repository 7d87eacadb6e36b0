"""When each account is a customer: first contract, churn, return, and the contracts that follow."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from account_health.synthetic.calendar import NS_PER_DAY, Calendar

OPEN_END = np.iinfo(np.int64).max
# Share of accounts that become customers during the data span rather than before it.
JOINER_SHARE = 0.12
# Share of churned accounts that come back, and the delay in days before they sign again.
RETURN_SHARE = 0.3
RETURN_DELAY_DAYS = (60, 180)
TERM_MONTHS = 12
CHURN_REASONS = (
    "budget cut",
    "moved to a competitor",
    "poor product fit",
    "champion left",
    "company acquired",
)


@dataclass
class CustomerHistory:
    """Per account, the [start, end) customer intervals in UTC nanoseconds; an open interval ends at OPEN_END.

    An account is at risk at instant T when an interval has start < T <= end, which is the same test
    as "a contract with start_at < T and end_at >= T" on the contracts written from these intervals.
    """

    intervals: list[list[list[int]]]
    end_ns: int
    churns: list[tuple[int, int, str]] = field(default_factory=list)

    def at_risk(self, moment_ns: int) -> np.ndarray:
        """Indexes of the accounts with a contract active at `moment_ns`."""
        return np.asarray(
            [i for i, spans in enumerate(self.intervals) if any(s < moment_ns <= e for s, e in spans)],
            dtype=np.int64,
        )

    def is_customer(self, account_index: np.ndarray, moment_ns: np.ndarray) -> np.ndarray:
        """Return whether each (account, instant) pair falls inside one of the account's customer intervals."""
        slots = max(len(spans) for spans in self.intervals)
        starts = np.full((len(self.intervals), slots), OPEN_END, dtype=np.int64)
        ends = np.full((len(self.intervals), slots), OPEN_END, dtype=np.int64)
        for i, spans in enumerate(self.intervals):
            for slot, (start, end) in enumerate(spans):
                starts[i, slot] = start
                ends[i, slot] = end
        inside = np.zeros(len(account_index), dtype=bool)
        for slot in range(slots):
            inside |= (moment_ns >= starts[account_index, slot]) & (moment_ns < ends[account_index, slot])
        return inside

    def first_start(self) -> np.ndarray:
        return np.asarray([spans[0][0] for spans in self.intervals], dtype=np.int64)

    def churn(self, rng: np.random.Generator, account: int, moment_ns: int) -> None:
        """End the account's open interval at `moment_ns`; some accounts return 60-180 days later."""
        spans = self.intervals[account]
        if spans[-1][1] != OPEN_END:
            raise ValueError(f"account index {account} is not a customer, so it cannot churn")
        spans[-1][1] = moment_ns
        reason = CHURN_REASONS[int(rng.integers(0, len(CHURN_REASONS)))]
        self.churns.append((account, moment_ns, reason))

        returns = rng.random() < RETURN_SHARE
        delay_seconds = int(rng.uniform(*RETURN_DELAY_DAYS) * 86_400)
        comeback = moment_ns + delay_seconds * 10**9
        if returns and comeback < self.end_ns:
            spans.append([comeback, OPEN_END])


def draw_history(rng: np.random.Generator, count: int, calendar: Calendar) -> CustomerHistory:
    """First contract start of each account: most signed up to four years before the span, some during it."""
    joins = rng.random(count) < JOINER_SHARE
    span_days = (calendar.end_ns - calendar.start_ns) / NS_PER_DAY
    latest_join_days = max(30.0, span_days - 120.0)
    before = calendar.start_ns - (rng.uniform(30.0, 4 * 365.0, size=count) * NS_PER_DAY).astype(np.int64)
    during = calendar.start_ns + (rng.uniform(0.0, latest_join_days, size=count) * NS_PER_DAY).astype(
        np.int64
    )
    starts = np.where(joins, during, before) // 10**9 * 10**9
    return CustomerHistory([[[int(start), OPEN_END]] for start in starts], calendar.end_ns)


def build_contracts(
    rng: np.random.Generator, history: CustomerHistory, accounts: pd.DataFrame, calendar: Calendar
) -> pd.DataFrame:
    """Consecutive 12-month contracts over every customer interval; a churned interval's last one ends at churn.

    Contracts starting after the span are not written; the current contract keeps its future renewal date.
    """
    rows = []
    for i, spans in enumerate(history.intervals):
        account_id = accounts["account_id"].iat[i]
        arr = float(accounts["arr"].iat[i])
        auto_renew = bool(rng.random() < 0.7)
        locked = bool(accounts["segment"].iat[i] == "Enterprise" and rng.random() < 0.3)
        number = 0
        for start, end in spans:
            term_start = pd.Timestamp(start)
            while term_start.value < min(end, calendar.end_ns):
                term_end = term_start + pd.DateOffset(months=TERM_MONTHS)
                number += 1
                rows.append(
                    {
                        "contract_id": f"ctr-{account_id.removeprefix('acct-')}-{number:02d}",
                        "account_id": account_id,
                        "start_at": term_start.value,
                        "end_at": min(term_end.value, end),
                        "term_months": TERM_MONTHS,
                        "arr": round(arr * (1.0 + 0.04 * (number - 1)), 2),
                        "auto_renew": auto_renew,
                        "locked": locked,
                    }
                )
                if term_end.value >= end:
                    break
                term_start = term_end
    return pd.DataFrame(rows)


def churn_frame(history: CustomerHistory, accounts: pd.DataFrame) -> pd.DataFrame:
    """Return the churn events drawn so far, oldest first."""
    frame = pd.DataFrame(history.churns, columns=["account_index", "churned_at", "reason"])
    frame["account_id"] = accounts["account_id"].to_numpy()[frame["account_index"].to_numpy(dtype=np.int64)]
    return frame.sort_values(["churned_at", "account_id"], kind="stable").reset_index(drop=True)
