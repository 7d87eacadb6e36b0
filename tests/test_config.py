from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from account_health.config import VENDOR_FORMATS, load_workspace, parse_config
from account_health.errors import ConfigError, WorkspaceNotFoundError
from account_health.workspace import init_workspace, open_stores, template_text


def test_template_is_valid_and_documents_every_section():
    config = parse_config(tomllib.loads(template_text()))
    assert config.tiers.red == 0.60
    assert config.training.horizon_days == 90
    for section in ("[workspace]", "[signals]", "[training]", "[tiers]", "[sources."):
        assert section in template_text()
    listed = " ".join(line.lstrip("# ") for line in template_text().splitlines())
    for vendor in VENDOR_FORMATS:
        assert re.search(rf"\b{vendor}\b", listed), vendor


def test_invalid_value_names_key_value_and_allowed(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text('[signals]\nsupport_normalisation = "per_user"\n')
    with pytest.raises(ConfigError) as error:
        load_workspace(tmp_path)
    message = str(error.value)
    assert "signals.support_normalisation" in message
    assert "'per_user'" in message
    assert "'absolute'" in message
    assert "'per_active_user'" in message


def test_unknown_key_is_rejected_by_name(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text("[training]\nhorizon = 30\n")
    with pytest.raises(ConfigError, match=r"training\.horizon: unknown key"):
        load_workspace(tmp_path)


def test_training_end_outside_the_years_is_rejected(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text("[training]\nend = 0001-01-01\n")
    with pytest.raises(ConfigError, match=r"training\.end = .*greater than or equal to 1900-01-01"):
        load_workspace(tmp_path)


def test_tier_cutoffs_must_descend(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text("[tiers]\nred = 0.3\norange = 0.4\n")
    with pytest.raises(ConfigError, match="cut-offs must fall from red to green"):
        load_workspace(tmp_path)


@pytest.mark.parametrize("domain", [" ourco.com ", "*.ourco.com", "jane@ourco.com", "<ourco.com>", "", "@"])
def test_internal_email_domain_must_be_plain(tmp_path: Path, domain: str):
    (tmp_path / "account-health.toml").write_text(f'[signals]\ninternal_email_domains = ["{domain}"]\n')
    with pytest.raises(ConfigError) as error:
        load_workspace(tmp_path)
    assert f"{domain!r} is not an email domain" in str(error.value)


def test_internal_email_domain_may_start_with_at(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text('[signals]\ninternal_email_domains = ["@OurCo.com"]\n')
    assert load_workspace(tmp_path).config.signals.internal_email_domains == ["@OurCo.com"]


def test_unknown_timezone_is_rejected(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text('[signals]\ndefault_timezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match="'Mars/Olympus' is not an IANA timezone"):
        load_workspace(tmp_path)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        (
            "{ urgent = 4.0, P1 = 8.0 }",
            "'P1' is not a ticket priority; the keys are urgent, high, normal, low",
        ),
        (
            "{ low = -1.0 }",
            "the weight of 'low' (-1.0) is outside 0 to 1,000,000; use a number in that range",
        ),
        ("{ urgent = nan }", "the weight of 'urgent' (nan) is outside 0 to 1,000,000"),
        (
            "{ urgent = nan, high = -inf }",
            "the weights of 'high' (-inf), 'urgent' (nan) are outside 0 to 1,000,000",
        ),
        ("{ urgent = 1e308 }", "the weight of 'urgent' (1e+308) is outside 0 to 1,000,000"),
        (
            "{ urgent = true }",
            "the weight of 'urgent' is true, not a number; give a number from 0 to 1,000,000, such as 4",
        ),
        ('{ urgent = "4" }', "the weight of 'urgent' is \"4\", not a number; give a number without quotes"),
        ("{ urgent = 1000000.5 }", "the weight of 'urgent' (1000000.5) is outside 0 to 1,000,000"),
    ],
)
def test_severity_weights_are_checked(tmp_path: Path, weights: str, expected: str):
    (tmp_path / "account-health.toml").write_text(f"[signals]\nseverity_weights = {weights}\n")
    with pytest.raises(ConfigError) as error:
        load_workspace(tmp_path)
    assert "signals.severity_weights" in str(error.value)
    assert expected in str(error.value)


def test_source_name_api_is_reserved(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text(
        '[sources.api]\ntable = "contact_changes"\nfiles = ["changes.csv"]\n'
    )
    with pytest.raises(
        ConfigError, match="the source name 'api' is reserved for the job changes received by the API"
    ):
        load_workspace(tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text("[training\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_workspace(tmp_path)


def test_config_not_utf8_names_line(tmp_path: Path):
    (tmp_path / "account-health.toml").write_bytes("[training]\n# f\u00fcr Kunden\n".encode("cp1252"))
    with pytest.raises(ConfigError) as raised:
        load_workspace(tmp_path)
    message = str(raised.value)
    assert "is not UTF-8" in message
    assert "b'\\xfc' on line 2" in message
    assert "save the file as UTF-8" in message


def test_config_path_that_is_folder(tmp_path: Path):
    (tmp_path / "account-health.toml").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_workspace(tmp_path)


def test_date_format_without_year_rejected():
    raw = {
        "sources": {"tickets": {"table": "tickets", "files": ["t.csv"], "csv": {"date_formats": ["%H:%M"]}}}
    }
    with pytest.raises(ConfigError, match=r"has no year field \(%Y or %y\)"):
        parse_config(raw)


def test_config_with_byte_order_mark_loads(tmp_path: Path):
    (tmp_path / "account-health.toml").write_bytes("\ufeff[training]\nhorizon_days = 60\n".encode())
    assert load_workspace(tmp_path).config.training.horizon_days == 60


@pytest.mark.parametrize("pattern", ["%Y-%Q", "%d/%m/%Y %"])
def test_date_format_duckdb_cannot_read(pattern: str):
    raw = {
        "sources": {"tickets": {"table": "tickets", "files": ["t.csv"], "csv": {"date_formats": [pattern]}}}
    }
    with pytest.raises(ConfigError) as raised:
        parse_config(raw)
    message = str(raised.value)
    assert f"sources.tickets.csv.date_formats = ['{pattern}']" in message
    assert "is not a format DuckDB's strptime reads" in message


def test_missing_workspace_says_how_to_create_one(tmp_path: Path):
    with pytest.raises(WorkspaceNotFoundError, match="account-health init"):
        load_workspace(tmp_path / "nowhere")


def test_paths_are_relative_to_the_config_file(tmp_path: Path):
    workspace = init_workspace(tmp_path / "ws")
    assert workspace.analytical_store_path == (tmp_path / "ws" / "data" / "analytical.duckdb").resolve()
    assert (
        workspace.operational_store_url
        == f"sqlite:///{(tmp_path / 'ws' / 'data' / 'operational.sqlite').resolve()}"
    )
    assert workspace.analytical_store_path.is_file()
    assert (tmp_path / "ws" / "data" / "operational.sqlite").is_file()


def test_environment_overrides_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "account-health.toml").write_text('[sources.a]\ntable = "accounts"\nfiles = ["a.csv"]\n')
    monkeypatch.setenv("ACCOUNT_HEALTH_ANALYTICAL_STORE", str(tmp_path / "elsewhere.duckdb"))
    monkeypatch.setenv("ACCOUNT_HEALTH_OPERATIONAL_STORE", "sqlite:///relative.sqlite")
    monkeypatch.setenv("ACCOUNT_HEALTH_MODELS_DIR", "m")
    monkeypatch.setenv("ACCOUNT_HEALTH_SOURCE_A_FILES", "x.csv:y.csv")
    workspace = load_workspace(tmp_path)
    assert workspace.analytical_store_path == tmp_path / "elsewhere.duckdb"
    assert workspace.operational_store_url == f"sqlite:///{tmp_path.resolve() / 'relative.sqlite'}"
    assert workspace.models_dir == tmp_path.resolve() / "m"
    assert workspace.source_files("a") == ["x.csv", "y.csv"]


def test_init_refuses_to_overwrite(tmp_path: Path):
    init_workspace(tmp_path)
    with pytest.raises(ConfigError, match="already exists"):
        init_workspace(tmp_path)


@pytest.mark.parametrize("url", ["not a url", "file:///etc/passwd"])
def test_notification_base_url_must_be_http(tmp_path: Path, url: str):
    (tmp_path / "account-health.toml").write_text(f'[notify.slack]\nenabled = true\nbase_url = "{url}"\n')
    with pytest.raises(ConfigError, match="is not an http\\(s\\) URL"):
        load_workspace(tmp_path)


def test_duckdb_settings_reach_the_analytical_store(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text(
        '[workspace]\nanalytical_threads = 1\nanalytical_memory_limit = "1.5GiB"\n'
    )
    workspace = load_workspace(tmp_path)
    with open_stores(workspace) as (store, _engine):
        threads, memory = store.connection.execute(
            "SELECT current_setting('threads'), current_setting('memory_limit')"
        ).fetchone()
    assert (threads, memory) == (1, "1.5 GiB")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "with its unit"),
        ("0%", "from 1% to 100%"),
        ("0GB", "at least 256MB"),
        ("10MiB", "at least 256MB"),
    ],
)
def test_duckdb_memory_limit_must_be_usable(tmp_path: Path, value: str, message: str):
    (tmp_path / "account-health.toml").write_text(f'[workspace]\nanalytical_memory_limit = "{value}"\n')
    with pytest.raises(ConfigError, match=rf"workspace\.analytical_memory_limit = '{value}': .*{message}"):
        load_workspace(tmp_path)


def test_init_on_a_file_names_it(tmp_path: Path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        init_workspace(tmp_path / "taken")
    with pytest.raises(ConfigError, match=r"cannot create the workspace .*taken/sub: Not a directory"):
        init_workspace(tmp_path / "taken" / "sub")


def test_section_check_names_section_not_its_values(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text("[notify.salesforce]\nenabled = true\n")
    with pytest.raises(ConfigError) as error:
        load_workspace(tmp_path)
    message = str(error.value)
    assert "notify.salesforce: base_url is required" in message
    assert "Health_Tier__c" not in message


@pytest.mark.parametrize("path", ["exports/{bogus}.csv", "exports/{as_of.day}.csv", "exports/{0}.csv"])
def test_crm_file_path_allows_only_as_of(tmp_path: Path, path: str):
    (tmp_path / "account-health.toml").write_text(f'[notify.crm_file]\nenabled = true\npath = "{path}"\n')
    with pytest.raises(ConfigError, match=r"notify\.crm_file\.path = .*the only placeholder is \{as_of\}"):
        load_workspace(tmp_path)


def test_crm_file_path_keeps_escaped_braces(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text(
        '[notify.crm_file]\npath = "exports/{{team}}-{as_of}.csv"\n'
    )
    assert load_workspace(tmp_path).config.notify.crm_file.path == "exports/{{team}}-{as_of}.csv"


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_regularisation_c_must_be_finite(value: float):
    with pytest.raises(ConfigError, match="Input should be a finite number"):
        parse_config({"training": {"regularisation_c": value}})
