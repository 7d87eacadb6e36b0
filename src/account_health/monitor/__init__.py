"""Monitoring: does the model still tell the truth, and should it be retrained?"""

from account_health.monitor.alerts import Alert, ModelAge
from account_health.monitor.report import MonitorReport, build_report

__all__ = ["Alert", "ModelAge", "MonitorReport", "build_report"]
