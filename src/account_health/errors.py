"""Exceptions and warning categories raised by the library.

Library code raises these; the CLI and the API turn them into messages and exit codes at the edge.
Every message names the offending value and what to do about it.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message, or its class name when the message is empty."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


class AccountHealthError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(AccountHealthError):
    """The workspace configuration is missing, unreadable or invalid."""


class WorkspaceNotFoundError(ConfigError):
    """No account-health.toml in the selected workspace folder."""


class SourceError(AccountHealthError):
    """A source file cannot be read as configured (missing file, missing column, bad mapping)."""


class NoDataError(AccountHealthError):
    """A command needs ingested data or a trained model that the workspace does not have."""


class TrainingError(AccountHealthError):
    """Training cannot produce a trustworthy model from the data (too few churn events, no rows)."""


class ModelArtifactError(AccountHealthError):
    """A model file is not a valid account-health model artifact."""


class AccountHealthWarning(UserWarning):
    """Base class of the statistical and data-quality caveats the library reports."""


class StaleModelWarning(AccountHealthWarning):
    """The model's training data ends long before the as-of date it scores."""


class NotValidatedWarning(AccountHealthWarning):
    """The model could not be shown to beat the base rate on its hold-out."""


class SeparationWarning(AccountHealthWarning):
    """A feature separates churned from retained accounts perfectly, or features are collinear."""


class SignalSettingsWarning(AccountHealthWarning):
    """The [signals] settings differ from those the model was trained with."""


class EarlySnapshotWarning(AccountHealthWarning):
    """Training snapshots lie before the oldest usage row, where every account reads as idle."""


class HistoryOrderWarning(AccountHealthWarning):
    """A date was scored before later dates that already have scores, whose tiers are not recomputed."""


class UnknownAccountError(NoDataError):
    """The operational store has no score for the requested account."""

    def __init__(self, account_id: str) -> None:
        super().__init__(
            f"account {account_id!r} has no score in this workspace; check the id, or wait for the next "
            "scoring run if the account is new"
        )
        self.account_id = account_id
