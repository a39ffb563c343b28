"""Shell completions and the man page: fresh from the Typer app, valid for their shells, rendering cleanly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ugosa_cli import hub
from ugosa_cli.strategy import STRATEGY_NAMES

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


sys.path.insert(0, str(SCRIPTS))
import gen_completions  # noqa: E402
import gen_man  # noqa: E402

sys.path.remove(str(SCRIPTS))
TREE = gen_completions.command_tree()
GENERATED = {**gen_completions.generate(), gen_man.OUTPUT: gen_man.man_page(TREE)}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_committed_file_matches_a_fresh_generation(name):
    committed = ROOT / name
    assert committed.is_file() and committed.read_text() == GENERATED[name], (
        f"{name} is stale; regenerate with: {gen_completions.REGENERATE}"
    )


def test_every_command_and_option_is_in_every_file():
    for command in TREE.walk():
        for name, text in GENERATED.items():
            if command.path:
                assert command.path[-1] in text, f"{command.name} missing from {name}"
            for option in command.options:
                long = option.long.replace("-", "\\-") if name == gen_man.OUTPUT else option.long.lstrip("-")
                assert long in text, f"{command.name} {option.long} missing from {name}"


def _bash_complete(line: str) -> list[str]:
    script = (
        f"source {ROOT / 'completions/ugosa.bash'}\n"
        'COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()\n'
        "_ugosa 2>/dev/null\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(["bash", "-c", script, "bash", line], capture_output=True, text=True, check=True)
    return [word for word in result.stdout.splitlines() if word]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("ugosa ", ["separate", "adapt", "strategies", "eval", "model", "labels"]),
        ("ugosa model ", ["list", "download", "path", "import", "remove"]),
        ("ugosa separate --two", ["--two-stems"]),
        ("ugosa separate --device c", ["cpu", "cuda"]),
        ("ugosa separate --format=f", ["flac"]),
        ("ugosa labels from-stems --format j", ["json"]),
        ("ugosa separate --stems v", ["vocals"]),
        ("ugosa adapt song.wav --optimizer ra", ["ranger", "radam"]),
        ("ugosa model path ", list(hub.REGISTRY)),
    ],
)
def test_bash_completes_commands_options_and_values(line, expected):
    assert set(expected) <= set(_bash_complete(line))
    assert all(word.startswith(line.rsplit(" ", 1)[-1].rsplit("=", 1)[-1]) for word in _bash_complete(line))


def test_bash_completes_strategy_names_across_the_colon():
    # bash splits words at ':', so the reply must be the text after the colon the user already typed
    assert _bash_complete("ugosa separate --strategy P-L") == [n for n in STRATEGY_NAMES if n.startswith("P-L")]
    assert _bash_complete("ugosa separate -s M-L3:") == ["D"]


def test_bash_offers_models_imported_into_the_cache(tmp_path, monkeypatch):
    (tmp_path / "models" / "imported").mkdir(parents=True)
    (tmp_path / "models" / "imported" / "my_band.th").write_bytes(b"")
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path))
    assert "my_band" in _bash_complete("ugosa separate --model ")


@pytest.mark.parametrize("shell, name", [("bash", "ugosa.bash"), ("zsh", "_ugosa"), ("fish", "ugosa.fish")])
def test_scripts_parse_in_their_shell(shell, name):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    result = subprocess.run([shell, "-n", str(ROOT / "completions" / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_fish_completes_subcommands_and_values():
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed")
    script = f"source {ROOT / 'completions/ugosa.fish'}; complete -C 'ugosa model '; complete -C 'ugosa separate -d '"
    result = subprocess.run(["fish", "-c", script], capture_output=True, text=True, check=True)
    words = {line.split("\t")[0] for line in result.stdout.splitlines()}
    assert {"list", "download", "import", "cpu", "cuda", "auto"} <= words


def test_man_page_has_the_sections_a_reader_looks_for():
    page = GENERATED[gen_man.OUTPUT]
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES"):
        assert f"\n.SH {section}\n" in page
    for variable in ("UGOSA_MODEL_ROOT", "UGOSA_CACHE_DIR", "UGOSA_OFFLINE", "UGOSA_DEBUG", "NO_COLOR"):
        assert variable in page
    for code in ("0", "1", "2", "130"):
        assert f"\n.TP\n\\fB{code}\\fR\n" in page


def test_man_page_renders_without_warnings():
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (Debian: apt-get install groff-base)")
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(ROOT / gen_man.OUTPUT)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    rendered = subprocess.run(
        ["groff", "-man", "-Tutf8", str(ROOT / gen_man.OUTPUT)], capture_output=True, text=True, check=True
    ).stdout
    assert "ugosa separate" in rendered and "--skip-existing" in rendered.replace("\u2010", "-")
