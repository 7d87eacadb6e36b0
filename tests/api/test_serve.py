from __future__ import annotations

import json
import urllib.request

from account_health.store.tokens import create_token
from scored import latest_scores, serve


def test_serve_with_two_workers(workspace, engine):
    token = create_token(engine, "read")[1]
    account = latest_scores(engine)[0]["account_id"]
    with serve(workspace.root, "--workers", "2") as base:
        request = urllib.request.Request(
            f"{base}/v1/accounts/{account}/health", headers={"Authorization": f"Bearer {token}"}
        )
        for _ in range(10):
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
                assert json.load(response)["account_id"] == account


def test_serve_rejects_missing_store(tmp_path):
    from console import run_cli

    (tmp_path / "account-health.toml").write_text("", encoding="utf-8")
    result = run_cli("-w", str(tmp_path), "serve", "--port", "1")
    assert result.returncode == 1
    assert "no operational store at" in result.stderr
