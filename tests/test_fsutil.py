"""Atomic writes: the files they create get the mode the user's umask gives, and a replaced file keeps its mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ugosa_cli.checkpoint import save_checkpoint
from ugosa_cli.fsutil import atomic_path
from ugosa_cli.models.convtasnet import ConvTasNet

from conftest import TINY_CONFIG


@pytest.fixture
def umask():
    """Set the process umask for one test, and restore it."""
    previous = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path, umask, mask, expected):
    umask(mask)
    target = tmp_path / "new" / "file.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("x")
    assert mode(target) == expected


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o077)
    target = tmp_path / "file.txt"
    target.write_text("old")
    target.chmod(0o644)
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and mode(target) == 0o644
    target.chmod(0o640)
    with atomic_path(target) as tmp:
        tmp.write_text("newer")
    assert mode(target) == 0o640


def test_stems_checkpoints_labels_and_cache_follow_the_umask(cli, tmp_path, umask, model_file, write_wav, monkeypatch):
    song = write_wav(seconds=0.2)
    labels = tmp_path / "labels.txt"
    labels.write_text("0\t0.1\tvocals\n")
    umask(0o022)
    separated = cli("separate", song, "--model", model_file, "-o", tmp_path / "out")
    assert separated.exit_code == 0, separated.stderr
    stems = [Path(p) for p in separated.stdout.split()]
    assert stems and all(mode(p) == 0o644 for p in stems)
    save_checkpoint(tmp_path / "saved.th", ConvTasNet(TINY_CONFIG))
    assert mode(tmp_path / "saved.th") == 0o644
    converted = cli("labels", "convert", labels, "-o", tmp_path / "labels.csv")
    assert converted.exit_code == 0, converted.stderr
    assert mode(tmp_path / "labels.csv") == 0o644
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "cache"))
    imported = cli("model", "import", model_file, "--name", "mine")
    assert imported.exit_code == 0, imported.stderr
    assert mode(Path(imported.stdout.strip())) == 0o644
    # rewriting a stem under a stricter umask keeps its 0644
    umask(0o077)
    again = cli("separate", song, "--model", model_file, "-o", tmp_path / "out", "--clip-mode", "clamp")
    assert again.exit_code == 0, again.stderr
    assert all(mode(p) == 0o644 for p in stems)
    fresh = cli("separate", song, "--model", model_file, "-o", tmp_path / "strict")
    assert all(mode(Path(p)) == 0o600 for p in fresh.stdout.split())
