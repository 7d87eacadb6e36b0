from __future__ import annotations

import pytest

from account_health.synthetic import GeneratedCompany, generate_company

SMALL_ACCOUNTS = 80
SMALL_MONTHS = 12
SMALL_SEED = 7


@pytest.fixture(scope="session")
def small_company(tmp_path_factory: pytest.TempPathFactory) -> GeneratedCompany:
    """A small company shared by the read-only tests: 80 accounts over 12 months, three snapshots."""
    return generate_company(
        tmp_path_factory.mktemp("company"), accounts=SMALL_ACCOUNTS, months=SMALL_MONTHS, seed=SMALL_SEED
    )
