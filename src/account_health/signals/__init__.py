"""Point-in-time signal values for any as-of instant."""

from account_health.signals.engine import compute_signals
from account_health.signals.registry import DETAILS, FEATURES, SIGNALS, SIGNALS_BY_NAME, SignalDefinition

__all__ = ["DETAILS", "FEATURES", "SIGNALS", "SIGNALS_BY_NAME", "SignalDefinition", "compute_signals"]
