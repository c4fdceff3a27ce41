"""Golden AdmissionReview -> response pairs over examples/state, through the Flask app.

Each `tests/golden/cases/NAME.request.json` must produce exactly `NAME.response.json`.
Rewrite the responses only on purpose: `pytest tests/unit/test_golden.py --regen-golden`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from webhook.app import create_app
from webhook.config import default_config
from webhook.state.files import load_state

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "golden" / "cases"
REQUESTS = sorted(CASES.glob("*.request.json"))


@pytest.fixture(scope="module")
def client() -> FlaskClient:
    app = create_app(default_config(), load_state(ROOT / "examples" / "state"))
    return app.test_client()


def test_cases_exist() -> None:
    """The golden directory holds cases (an empty glob would make the table below vacuous)."""
    assert len(REQUESTS) >= 10


@pytest.mark.parametrize("request_file", REQUESTS, ids=[p.name.split(".")[0] for p in REQUESTS])
def test_golden(request_file: Path, client: FlaskClient, request: pytest.FixtureRequest) -> None:
    """The webhook answers this AdmissionReview exactly as recorded."""
    response = client.post(
        "/validate", data=request_file.read_bytes(), content_type="application/json"
    )
    assert response.status_code == 200
    got = response.get_json()
    golden = request_file.with_name(request_file.name.replace(".request.", ".response."))
    if request.config.getoption("--regen-golden"):
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert golden.exists(), f"{golden.name} is missing: run with --regen-golden and review it"
    assert got == json.loads(golden.read_text())
