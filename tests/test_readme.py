"""The README's examples work when pasted.

Each command of its "Using it" section runs as written, with bash, in a fresh directory that
holds what the commands name (the installed `.venv/bin/ledger`, the shipped catalogs and the
sample month), so the default store `sqlite:///ledger.db` is made there. Only the Kafka
example gets this test's own topics and group added, so that it never reads or writes the
default topics of a broker someone may be using.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import kafka_args

ROOT = Path(__file__).resolve().parent.parent
LEDGER = ".venv/bin/ledger"

# What a command exits with when it does what the README says; every other command exits 0.
DOCUMENTED_EXITS = {"authorize": 3}  # "exit 3 when refused": ACC-1002's balance is negative


def command_blocks(section: str) -> list[list[str]]:
    """The indented `ledger` command lines of one README section, block by block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    blocks: list[list[str]] = []
    previous_was_command = False
    for line in text[start : end if end != -1 else None].splitlines():
        is_command = line.startswith(f"    {LEDGER} ")
        if is_command:
            if not previous_was_command:
                blocks.append([])
            blocks[-1].append(line.strip())
        previous_was_command = is_command
    return blocks


def subcommand(line: str) -> str:
    """`authorize` of `.venv/bin/ledger --json authorize ...`: the first word not an option."""
    words = line.split()[1:]
    options_with_values = {"--store"}
    index = 0
    while words[index].startswith("-"):
        index += 2 if words[index] in options_with_values else 1
    return words[index]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A directory that looks like the repository to the README's commands."""
    installed = Path(sys.prefix) / "bin" / "ledger"
    assert installed.exists(), f"the `ledger` command is not installed in {sys.prefix}"
    (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (tmp_path / "ledger").symlink_to(ROOT / "ledger", target_is_directory=True)
    # A copy, not a link: ingesting writes the dead letters beside the file.
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "sample-month.jsonl", tmp_path / "examples")
    return tmp_path


def run_pasted(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of someone who has set nothing of the ledger's own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LEDGER_")}
    return {**env, **extra}


def assert_as_documented(line: str, result: subprocess.CompletedProcess[str]) -> None:
    expected = DOCUMENTED_EXITS.get(subcommand(line), 0)
    shown = f"{line}\nexit {result.returncode}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    assert result.returncode == expected, shown
    assert "Traceback" not in result.stderr, shown
    if ">" not in line:  # a command whose output is not redirected shows something
        assert (result.stdout + result.stderr).strip(), shown


def test_the_readme_has_the_examples_this_test_runs() -> None:
    blocks = command_blocks("Using it")
    assert len(blocks) == 2, blocks  # the embedded store's walk-through, then Kafka's
    assert len(blocks[0]) >= 20 and any(" ingest " in line for line in blocks[0])
    assert [subcommand(line) for line in blocks[1]] == ["catalog", "publish", "consume"]


def test_every_example_on_the_embedded_store_runs_as_pasted(workspace: Path) -> None:
    env = clean_env()
    for line in command_blocks("Using it")[0]:
        assert_as_documented(line, run_pasted(line, workspace, env))
    # The walk-through ends with the views rebuilt from the stored events, and they add up.
    audit = run_pasted(f"{LEDGER} audit", workspace, env)
    assert audit.returncode == 0 and audit.stdout.strip().endswith("adds up"), audit.stdout
    assert (workspace / "ledger.db").exists()


@pytest.mark.kafka
def test_the_kafka_example_runs_as_pasted(
    workspace: Path, kafka_server: str, kafka_names: dict[str, str]
) -> None:
    env = clean_env(LEDGER_KAFKA=kafka_server)
    for line in command_blocks("Using it")[1]:
        command = next(c for c in ("catalog publish", "consume", "publish") if f" {c} " in line)
        own_names = kafka_args(kafka_server, kafka_names, command, group=command == "consume")[2:]
        result = run_pasted(f"{line} {' '.join(own_names)}", workspace, env)
        assert_as_documented(line, result)
    consumed = run_pasted(f"{LEDGER} --store sqlite:///kafka.db balance ACC-1001", workspace, env)
    embedded_ingest = run_pasted(
        f"{LEDGER} catalog event ledger/catalogs/default.toml > catalog.jsonl && "
        f"{LEDGER} --store sqlite:///file.db ingest catalog.jsonl examples/sample-month.jsonl",
        workspace,
        env,
    )
    assert embedded_ingest.returncode == 0, embedded_ingest.stderr
    ingested = run_pasted(f"{LEDGER} --store sqlite:///file.db balance ACC-1001", workspace, env)
    assert consumed.returncode == 0 and consumed.stdout == ingested.stdout, (
        consumed.stdout,
        ingested.stdout,
    )
