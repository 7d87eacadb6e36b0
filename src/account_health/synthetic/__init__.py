"""Seeded synthetic companies whose churn follows a known logistic model of the product's signals."""

from account_health.synthetic.calendar import DATA_END
from account_health.synthetic.company import GeneratedCompany, generate_company
from account_health.synthetic.truth import WeightChange

__all__ = ["DATA_END", "GeneratedCompany", "WeightChange", "generate_company"]
