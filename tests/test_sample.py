"""The shipped sample month is what its generator makes, and the demo's main job works on it."""

import json
import subprocess
import sys
from pathlib import Path

from tests.cli_helpers import run_json

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample-month.jsonl"


def test_sample_month_is_reproducible_from_its_generator() -> None:
    made = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_sample.py")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert made == SAMPLE.read_text(encoding="utf-8")


def test_sample_month_ingests_with_its_bad_records_dead_lettered(
    tmp_path: Path, sqlite_url: str
) -> None:
    dead = tmp_path / "dead.jsonl"
    report = run_json(
        "--store", sqlite_url, "ingest", "--quiet", "--dead-letter", str(dead), str(SAMPLE)
    )
    assert report["totals"]["dead_lettered"] == 3
    assert report["totals"]["duplicates"] == 1
    reasons = [json.loads(line)["reason"] for line in dead.read_text().splitlines()]
    assert reasons[0].startswith("not JSON")
    assert "occurred_at has no UTC offset" in reasons[1]
    assert reasons[2] == "unknown account ACC-9999"
    # Postpaid accounts keep no prepaid balance; everything goes on the invoice (I3).
    assert run_json("--store", sqlite_url, "balance", "ACC-2001")["balance"] == "0.0000"
