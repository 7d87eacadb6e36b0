"""Sentiment: NPS, surveys and call tags on one 0-10 scale, averaged with a recency half-life."""

from __future__ import annotations

import ibis
from ibis import _

from account_health.signals.context import SignalContext, days_between

CALL_TAG_SCORES = {"positive": 10.0, "neutral": 5.0, "negative": 0.0}
# The scales the ingest accepts on an NPS row: 0-10, also written with zero decimals such as 0.0-10.0.
NPS_SCALE_PATTERN = r"^0+(\.0+)?-0*10(\.0+)?$"


def sentiment_signal(context: SignalContext) -> ibis.Table | None:
    """Return (account_id, as_of, sentiment_score, sentiment_responses, sentiment_excluded, nps_latest, nps_change)."""
    if not context.configured("sentiment_responses"):
        return None
    settings = context.settings
    # Responses at the same instant are ordered by id, so both engines pick the same latest NPS.
    by_time = ibis.window(group_by="account_id", order_by=["responded_at", "response_id"])
    versions = context.versions("sentiment_responses")
    versions = versions.mutate(_order=ibis.dense_rank().over(by_time))
    rows = context.known_at("sentiment_responses", versions)
    rows = rows.filter(
        (rows.responded_at < rows.as_of)
        & (rows.responded_at >= rows.as_of - ibis.interval(days=settings.sentiment_lookback_days))
    )

    scale_min = rows.scale.split("-")[0].cast("float64")
    scale_max = rows.scale.split("-")[1].cast("float64")
    tag_score = rows.tag.cases(*CALL_TAG_SCORES.items(), else_=ibis.null("float64"))
    # The ingest quarantines an NPS row declaring a scale other than 0-10, and one stored before that
    # check is left out. The scale of such a row may be any text, so it is matched, not cast.
    nps_scale = rows.scale.isnull() | rows.scale.re_search(NPS_SCALE_PATTERN)
    normalised = ibis.cases(
        ((rows.kind == "nps") & nps_scale, rows.score),
        (rows.kind == "survey", (rows.score - scale_min) / (scale_max - scale_min) * 10.0),
        (rows.kind == "call", tag_score),
        else_=ibis.null("float64"),
    )
    dismissed = rows.dismissed.fill_null(False)
    rows = rows.mutate(
        normalised=ibis.ifelse(dismissed, ibis.null("float64"), normalised),
        age_days=days_between(rows.as_of, rows.responded_at),
    )
    rows = rows.mutate(weight=(0.5 ** (_.age_days / settings.sentiment_half_life_days)))
    included = rows.normalised.notnull()

    # The latest NPS response has the highest `_order`, and the previous one the highest below it. Two
    # arg-max aggregates replace ranking the responses of every (account, as_of), which sorted the join.
    nps = rows.filter(included & (rows.kind == "nps"))
    latest = nps.group_by(["account_id", "as_of"]).aggregate(
        _latest_order=nps._order.max(), nps_latest=nps.score.argmax(nps._order)
    )
    earlier = nps.join(latest, ["account_id", "as_of"])
    earlier = earlier.filter(earlier._order < earlier._latest_order)
    previous = earlier.group_by(["account_id", "as_of"]).aggregate(
        nps_previous=earlier.score.argmax(earlier._order)
    )

    scored = rows.group_by(["account_id", "as_of"]).aggregate(
        weighted=(rows.weight * rows.normalised).sum(where=included),
        weights=rows.weight.sum(where=included),
        sentiment_responses=included.sum(),
        sentiment_excluded=(~included).sum(),
    )
    result = context.accounts.select("account_id", "as_of")
    result = result.left_join(scored, ["account_id", "as_of"]).left_join(latest, ["account_id", "as_of"])
    result = result.left_join(previous, ["account_id", "as_of"])
    return result.select(
        "account_id",
        "as_of",
        sentiment_score=ibis.ifelse(_.weights > 0, _.weighted / _.weights, ibis.null("float64")),
        sentiment_responses=_.sentiment_responses.fill_null(0),
        sentiment_excluded=_.sentiment_excluded.fill_null(0),
        nps_latest=_.nps_latest,
        nps_change=_.nps_latest - _.nps_previous,
    )
