"""The README's examples work when pasted, and so do those at the foot of each command's help.

Each command of its "Using it" section runs as written, with bash, in a fresh directory that
holds what the commands name (the installed `.venv/bin/ledger`, the shipped catalogs and the
sample month), so the default store `sqlite:///ledger.db` is made there. Only the Kafka
example gets this test's own topics and group added, so that it never reads or writes the
default topics of a broker someone may be using.
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cli.main import commands_of, main
from tests.cli_helpers import kafka_args, run

ROOT = Path(__file__).resolve().parent.parent
LEDGER = ".venv/bin/ledger"

# What a command exits with when it does what the README says; every other command exits 0.
DOCUMENTED_EXITS = {"authorize ACC-1002 ": 3}  # "exit 3 when refused": its balance is negative


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


def command_index(words: list[str]) -> int:
    """Where the command starts in a command line's words, after the program and the options
    given before the command (`--store` takes a value)."""
    index = 1
    while words[index].startswith("-"):
        index += 2 if words[index] == "--store" else 1
    return index


def subcommand(line: str) -> str:
    """`authorize` of `.venv/bin/ledger --json authorize ...`: the first word not an option."""
    words = line.split()
    return words[command_index(words)]


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
    expected = next((code for words, code in DOCUMENTED_EXITS.items() if words in line), 0)
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


def help_examples() -> dict[str, list[str]]:
    """The example lines of each command's `--help`, by the command's words after `ledger`."""
    examples = {}
    for path in commands_of(main):
        text = run(*path.split(), "--help").stdout
        assert "\n  Examples:\n" in text, f"`ledger {path} --help` shows no examples"
        shown = text.split("\n  Examples:\n")[1].splitlines()
        examples[path] = [line.strip() for line in shown]
    return examples


def parsed(line: str) -> tuple[str, dict[str, object]]:
    """The command an example runs, by its words after `ledger`, and its parameters as click
    parses them (a mistyped option or value raises)."""
    words = shlex.split(line)
    for redirect in (">", "<"):  # bash's, not the command's
        if redirect in words:
            at = words.index(redirect)
            del words[at : at + 2]
    assert words[0] == "ledger", line
    main.make_context("ledger", words[1:])  # the options before the command
    index = command_index(words)
    command: click.Command = main
    path: list[str] = []
    while isinstance(command, click.Group):
        path.append(words[index])
        command = command.commands[words[index]]
        index += 1
    context = command.make_context(" ".join(path), words[index:])
    return " ".join(path), context.params


def test_every_command_s_help_ends_with_examples_of_itself_that_parse() -> None:
    examples = help_examples()
    assert len(examples) == 21  # ledger, 17 commands and catalog's 3
    for path, lines in examples.items():
        assert lines, path
        for line in lines:
            invoked, _ = parsed(line)
            # ledger's and catalog's own examples show the commands to start with
            assert invoked == path or path in ("", "catalog"), (path, line)
    # What the test reads is what click parsed, not a count of words.
    assert parsed("ledger --json authorize ACC-1002 --msisdn +14165550201 --to +1212")[1] == {
        "account": "ACC-1002",
        "msisdn": "+14165550201",
        "destination": "+1212",
        "at": None,
    }
    with pytest.raises(click.BadParameter):
        parsed("ledger rebuild --processes 0")
    with pytest.raises(click.NoSuchOption):
        parsed("ledger history ACC-1001 --last 20")


def needs_a_service(line: str) -> bool:
    """Examples of Kafka's commands and of the PostgreSQL store: the README's Kafka example and
    the service tests run those commands; here they are parsed only."""
    path, _ = parsed(line)
    return path in ("consume", "publish", "catalog publish") or "postgresql://" in line


def test_every_help_example_on_the_embedded_store_runs_as_pasted(workspace: Path) -> None:
    env = clean_env()
    lines = [line for lines in help_examples().values() for line in lines]
    embedded = [line for line in lines if not needs_a_service(line)]
    assert len(embedded) >= 30, embedded
    # The quick start first, as the help of `ledger` shows it: the catalog, then the month.
    first = ("ledger catalog event ", "ledger ingest catalog.jsonl ")
    in_order = sorted(
        embedded, key=lambda line: next((i for i, s in enumerate(first) if line.startswith(s)), 2)
    )
    for line in in_order:
        pasted = line.replace("ledger ", f"{LEDGER} ", 1)
        assert_as_documented(pasted, run_pasted(pasted, workspace, env))
    assert (workspace / "invoices-2026-11.csv").read_text().startswith("account_id,")
