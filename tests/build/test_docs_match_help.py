"""The README's command table and `--help` say the same: every option the README names for a command is one that
command's `--help` lists, and the model options (MODEL-OPTIONS) are the same flags with the same defaults on every
command that runs the model. Reads the built `postlens`.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("POSTLENS_BINARY", REPO / ".build" / "debug" / "postlens"))
MODEL_OPTIONS = ["--model", "--format", "--threads", "--max-image-tokens"]
MODEL_COMMANDS = ["serve", "ask", "analyze", "worker"]


def help_text(*command: str) -> str:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} does not exist: run `swift build` first", pytrace=False)
    done = subprocess.run([str(BINARY), *command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def readme_rows() -> dict[str, str]:
    """`postlens CMD …` synopsis of each row of the README's command table, by command."""
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        m = re.match(r"\| `postlens ([a-z]+)([^`]*)`", line)
        if m:
            rows[m.group(1)] = m.group(2).replace("MODEL-OPTIONS", " ".join(MODEL_OPTIONS))
    return rows


def options(text: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z0-9-]+", text))


def test_every_option_the_readme_names_is_in_help():
    rows = readme_rows()
    assert set(MODEL_COMMANDS) <= set(rows), rows.keys()
    for command, synopsis in rows.items():
        if command == "jobs":  # subcommands, each with its own --help
            continue
        missing = options(synopsis) - options(help_text(command))
        assert not missing, f"README names {sorted(missing)} for `postlens {command}`, which --help does not list"


@pytest.mark.parametrize("command", MODEL_COMMANDS + ["bench"])
def test_model_running_commands_share_the_model_options_and_defaults(command):
    text = help_text(command)
    # (bench's --model is optional: it may time --random instead.)
    assert set(MODEL_OPTIONS) <= options(text), (command, sorted(options(text)))
    # Flag, value and default as ArgumentParser prints them, e.g. `--format <format>  Runtime … (values: …; default: q8)`.
    flat = " ".join(text.split())
    assert re.search(r"--format <format> .{0,200}?default: q8\)", flat), flat
    assert re.search(r"--max-image-tokens <max-image-tokens> .{0,200}?\(default: 1280\)", flat), flat
    assert "--max-pixels" not in text


def test_the_readme_states_the_model_options_defaults():
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "`--format q8|q4|f32` (default q8)" in readme
    assert "`--max-image-tokens N` (default 1,280" in readme
