from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from account_health.actions.playbook import (
    EXECUTIVE_SAVE,
    GRACEFUL_EXIT,
    PRE_WINDOW,
    RENEWAL_FAR,
    SAVE_PLAN,
    WINDOW_OPEN,
    champion_strength,
    deciles,
    is_locked_multi_year,
    predicted_ltv,
    renewal_stage,
    resolve_action,
)
from account_health.actions.settings import ActionSettings, RenewalSettings
from account_health.config import parse_config
from account_health.errors import ConfigError

AS_OF = datetime(2025, 12, 1)
SETTINGS = ActionSettings()


def _account(**overrides):
    account = {
        "account_id": "A1",
        "tier": "Red",
        "probability": 0.7,
        "model_version": "m1",
        "validated": True,
        "name": "Acme",
        "owner": "ana@vendor.example",
        "arr": 100_000.0,
        "renewal_date": datetime(2026, 9, 1),
        "locked_multi_year": False,
        "pltv": 50_000.0,
        "pltv_decile": 5,
        "champion_strength": "single",
    }
    account.update(overrides)
    return account


def _resolve(account, workshop_done=False, watch=None, candidates=()):
    playbook = SETTINGS.playbook.for_tier(account["tier"])
    return resolve_action(account, AS_OF, SETTINGS, playbook, workshop_done, watch, list(candidates))


@pytest.mark.parametrize(
    ("tier", "prompt", "persona", "expansion"),
    [
        ("Red", "talk-to-your-csm", "executive-escalation", "suppressed"),
        ("Orange", None, "csm-handoff", "suppressed"),
        ("Yellow", None, "standard", "after-workshop"),
        ("Green", "expansion-offer", "feature-tips", "allowed"),
        ("Dark-Green", "refer-a-colleague", "review-request", "aggressive"),
    ],
)
def test_default_playbook_keys(tier, prompt, persona, expansion):
    action = _resolve(_account(tier=tier))
    assert action.prompt_key == prompt
    assert action.persona_key == persona
    assert action.expansion == expansion
    assert action.tier == tier


def test_red_is_due_the_same_day_for_the_owner():
    action = _resolve(_account())
    assert action.motion == "exec-sponsor-outreach"
    assert action.due_date == date(2025, 12, 1)
    assert action.owner == "ana@vendor.example"
    assert action.expansion_allowed is False


def test_renewal_stage_boundaries():
    settings = RenewalSettings()
    assert renewal_stage(None, AS_OF, settings) is None
    assert renewal_stage(datetime(2026, 3, 1), AS_OF, settings) == WINDOW_OPEN  # 90 days
    assert renewal_stage(datetime(2026, 3, 2), AS_OF, settings) == PRE_WINDOW
    assert renewal_stage(datetime(2026, 5, 30), AS_OF, settings) == PRE_WINDOW  # 180 days
    assert renewal_stage(datetime(2026, 5, 31), AS_OF, settings) == RENEWAL_FAR


def test_locked_multi_year_red_gets_a_save_plan_a_year_before_renewal():
    renewal = datetime(2028, 6, 1)  # 30 months out
    action = _resolve(_account(renewal_date=renewal, locked_multi_year=True, pltv_decile=10))
    assert action.motion == SAVE_PLAN
    assert action.due_date == date(2027, 6, 1)
    assert action.tier == "Red"
    assert action.renewal_stage == RENEWAL_FAR


def test_locked_red_within_a_year_of_renewal_is_escalated_now():
    action = _resolve(_account(renewal_date=datetime(2026, 6, 1), locked_multi_year=True))
    assert action.motion == "exec-sponsor-outreach"
    assert action.due_date == date(2025, 12, 1)


def test_save_plan_month_end_falls_back_to_the_last_day():
    action = _resolve(_account(renewal_date=datetime(2028, 2, 29), locked_multi_year=True))
    assert action.due_date == date(2027, 2, 28)


def test_pltv_deciles_pick_executive_save_or_graceful_exit():
    top = _resolve(_account(pltv_decile=10))
    bottom = _resolve(_account(pltv_decile=1))
    orange_top = _resolve(_account(tier="Orange", pltv_decile=10))
    assert top.motion == EXECUTIVE_SAVE
    assert top.due_date == date(2025, 12, 1)
    assert bottom.motion == GRACEFUL_EXIT
    assert bottom.due_date == date(2025, 12, 15)
    assert orange_top.motion == "csm-intervention"


def test_due_date_never_after_the_renewal():
    action = _resolve(_account(tier="Green", renewal_date=datetime(2025, 12, 10)))
    assert action.due_date == date(2025, 12, 10)
    assert action.renewal_stage == WINDOW_OPEN
    assert action.steps[0].startswith("renewal window open")


def test_yellow_expansion_waits_for_a_workshop():
    assert _resolve(_account(tier="Yellow")).expansion_allowed is False
    assert _resolve(_account(tier="Yellow"), workshop_done=True).expansion_allowed is True
    assert _resolve(_account(tier="Orange"), workshop_done=True).expansion_allowed is False


def test_departed_champion_step_names_the_top_candidate():
    candidates = [{"contact_id": "K2", "email": "kim@acme.example"}, {"contact_id": "K3", "email": None}]
    action = _resolve(_account(champion_strength="departed"), candidates=candidates)
    assert action.replacement_candidates == candidates
    assert "champion left: meet the top replacement candidate, kim@acme.example" in action.steps
    lonely = _resolve(_account(champion_strength="departed"))
    assert "champion left: no replacement candidate among the account's contacts" in lonely.steps


def test_watch_flag_is_carried_without_changing_the_tier():
    watch = {"reason": "CEO escalation", "until": datetime(2026, 1, 31)}
    action = _resolve(_account(tier="Green"), watch=watch)
    assert action.tier == "Green"
    assert action.watch_reason == "CEO escalation"
    assert action.steps[-1] == "on the watch list until 2026-01-31: CEO escalation"


def test_missing_owner_falls_back_to_the_default():
    assert _resolve(_account(owner=None)).owner == "unassigned"


def test_predicted_ltv_uses_the_supplied_value_first():
    assert predicted_ltv(0.5, 1000.0, 42.0, 90, 10) == 42.0
    assert predicted_ltv(0.5, None, None, 90, 10) is None
    assert predicted_ltv(0.25, 1000.0, None, 365, 10) == pytest.approx(1000.0 * 4 * 365 / 365.25)
    assert predicted_ltv(1e-6, 1000.0, None, 90, 10) == 10_000.0


def test_deciles_run_from_1_to_10_and_skip_missing():
    values = pd.Series([float(value) for value in range(20)] + [None])
    result = deciles(values)
    assert result.iloc[0] == 1
    assert result.iloc[19] == 10
    assert pd.isna(result.iloc[20])
    assert sorted(result.dropna().unique()) == list(range(1, 11))


def test_champion_strength_levels():
    assert champion_strength({"champion_in_seat": float("nan")}) == "unknown"
    assert champion_strength({"champion_in_seat": 0.0, "champions_in_seat": 0}) == "departed"
    assert champion_strength({"champion_in_seat": 1.0, "champions_in_seat": 1}) == "single"
    assert champion_strength({"champion_in_seat": 1.0, "champions_in_seat": 3}) == "strong"


def test_multi_year_from_term_or_dates():
    settings = RenewalSettings()
    assert is_locked_multi_year(True, 36, None, None, settings)
    assert not is_locked_multi_year(True, 12, None, None, settings)
    assert not is_locked_multi_year(False, 36, None, None, settings)
    assert is_locked_multi_year(True, None, datetime(2025, 1, 1), datetime(2027, 1, 1), settings)
    assert not is_locked_multi_year(None, 36, None, None, settings)


def test_playbook_override_keeps_the_other_defaults():
    config = parse_config({"actions": {"playbook": {"Red": {"due_days": 1, "owner": "vp@vendor.example"}}}})
    red = config.actions.playbook.for_tier("Red")
    assert red.due_days == 1
    assert red.owner == "vp@vendor.example"
    assert red.persona_key == "executive-escalation"


def test_unknown_tier_and_bad_expansion_are_rejected():
    with pytest.raises(ConfigError, match=r"actions\.playbook\.Purple: unknown key"):
        parse_config({"actions": {"playbook": {"Purple": {}}}})
    with pytest.raises(ConfigError, match=r"actions\.playbook\.Green\.expansion = 'maybe'"):
        parse_config({"actions": {"playbook": {"Green": {"expansion": "maybe"}}}})
    with pytest.raises(ConfigError, match="pre_window_days"):
        parse_config({"actions": {"renewal": {"window_open_days": 200}}})
