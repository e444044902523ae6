"""Running the `ledger` command in-process, as a user would type it."""

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from cli.main import main


def run(*args: str, input: str | bytes | None = None, expect: int = 0) -> Result:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
    return result


def run_json(*args: str, **kwargs: Any) -> dict[str, Any]:
    result = run("--json", *args, **kwargs)
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def balances(store: str, *accounts: str) -> dict[str, str]:
    return {a: run_json("--store", store, "balance", a)["balance"] for a in accounts}


def ingest_events(tmp_path: Path, store: str, *events: dict[str, Any]) -> None:
    """Write the events as a JSON Lines file and ingest it; none may be dead-lettered."""
    from tests.factories import jsonl

    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(*events), encoding="utf-8")
    report = run_json("--store", store, "ingest", "--quiet", str(path))
    assert report["totals"]["dead_lettered"] == 0, report


def kafka_args(bootstrap: str, names: dict[str, str], group: bool = False) -> list[str]:
    """The Kafka options of `ledger publish`/`consume` for one test's topics (and group)."""
    args = [
        "--bootstrap",
        bootstrap,
        "--topic",
        names["topic"],
        "--catalog-topic",
        names["catalog_topic"],
        "--dead-letter-topic",
        names["dead_letter_topic"],
    ]
    return [*args, "--group", names["group"]] if group else args
