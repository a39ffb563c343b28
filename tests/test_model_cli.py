"""``ugosa model ...`` through the real entry point, against a local HTTP server."""

from __future__ import annotations

import hashlib
import json

from test_hub import hashed_name, hub_env, model_bytes, publish, server  # noqa: F401 - shared fixtures

from ugosa_cli import hub


def flat(text: str) -> str:
    """stderr with the console's line wrapping undone."""
    return " ".join(text.split())


def test_list_shows_models_before_and_after_download(cli, server, hub_env, publish):
    file, _ = publish()
    before = cli("model", "list")
    assert before.exit_code == 0
    lines = before.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "SIZE", "SHA-256", "DESCRIPTION", "PATH"]
    tasnet = next(line for line in lines if line.startswith("tasnet "))
    assert "not cached" in tasnet and "(default)" in tasnet
    assert str(hub_env) in flat(before.stderr)

    assert cli("model", "download", "tasnet").exit_code == 0
    tasnet = next(line for line in cli("model", "list").stdout.splitlines() if line.startswith("tasnet "))
    assert " cached " in tasnet and tasnet.endswith(str(hub_env / file))
    assert server.requests == [f"models/{file}"]


def test_list_json(cli, server, hub_env, publish):
    file, content = publish()
    cli("model", "download")
    result = cli("model", "list", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["cache"] == str(hub_env)
    rows = {row["name"]: row for row in document["models"]}
    assert set(rows) == {"tasnet", "tasnet_extra", "htdemucs", "htdemucs_ft", "htdemucs_6s", "demo", "demo_htdemucs"}
    assert all(rows[name]["kind"] == "packaged" and rows[name]["available"] is True
               for name in ("demo", "demo_htdemucs"))
    assert rows["tasnet"] == {
        "name": "tasnet",
        "description": "test tasnet",
        "kind": "remote",
        "default": True,
        "available": True,
        "corrupt": False,
        "size": len(content),
        "path": str(hub_env / file),
        "paths": [str(hub_env / file)],
        "sha256": [hashlib.sha256(content).hexdigest()],
        "url": server.url(f"models/{file}"),
    }
    assert rows["htdemucs_ft"]["sha256"] == ["ba3fe64a", "e57c48e6", "ef3bcb9c", "f3cf25b2"]  # promised by the names
    assert rows["tasnet_extra"]["available"] is False and rows["tasnet_extra"]["path"] is None


def test_list_marks_a_cut_cached_model_corrupt(cli, server, hub_env, publish):
    file, content = publish()
    assert cli("model", "download").exit_code == 0
    (hub_env / file).write_bytes(content[: len(content) // 2])
    listed = cli("model", "list")
    assert listed.exit_code == 0
    tasnet = next(line for line in listed.stdout.splitlines() if line.startswith("tasnet "))
    assert " corrupt " in tasnet and " cached " not in tasnet and tasnet.endswith(str(hub_env / file))
    assert "ugosa model remove tasnet" in flat(listed.stderr)
    rows = {row["name"]: row for row in json.loads(cli("model", "list", "--json").stdout)["models"]}
    assert rows["tasnet"]["corrupt"] is True and rows["tasnet"]["available"] is False
    assert rows["tasnet"]["path"] == str(hub_env / file) and rows["demo"]["corrupt"] is False


def test_download_prints_the_path_shows_progress_and_is_idempotent(cli, server, hub_env, publish):
    file, content = publish()
    first = cli("model", "download")
    assert first.exit_code == 0, first.stderr
    assert first.stdout == f"{hub_env / file}\n"
    assert "downloading tasnet: 100.0%" in first.stderr
    assert (hub_env / file).read_bytes() == content

    second = cli("model", "download", "tasnet", "--json")
    assert second.exit_code == 0
    assert json.loads(second.stdout) == {
        "name": "tasnet",
        "path": str(hub_env / file),
        "paths": [str(hub_env / file)],
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
    }
    assert "downloading" not in second.stderr
    assert len(server.requests) == 1


def test_download_of_a_corrupt_file_fails_cleanly(cli, server, hub_env, publish):
    publish(file="tasnet-00000000.th")
    result = cli("model", "download", "tasnet")
    assert result.exit_code == 1
    assert "expected 00000000" in flat(result.stderr) and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not any(p.suffix in (".th", ".partial") for p in hub_env.rglob("*"))


def test_download_offline_names_the_import_command(cli, server, hub_env, publish, monkeypatch):
    file, _ = publish()
    monkeypatch.setenv("UGOSA_OFFLINE", "1")
    result = cli("model", "download")
    assert result.exit_code == 1
    assert f"ugosa model import {file}" in flat(result.stderr)
    assert server.requests == []


def test_download_unknown_name_is_bad_input_before_any_download(cli, server, hub_env, publish):
    publish()
    result = cli("model", "download", "tasnet", "nosuch")
    assert result.exit_code == 2
    assert server.requests == []
    assert "unknown model 'nosuch'" in flat(result.stderr) and "tasnet_extra" in flat(result.stderr)


def test_download_a_url_without_hash_warns(cli, server, hub_env, tiny_model, tmp_path):
    server.files["share/plain.th"] = model_bytes(tiny_model, tmp_path)
    url = server.url("share/plain.th")
    result = cli("model", "download", url)
    assert result.exit_code == 0
    assert result.stdout == f"{hub.url_cache_path(url)}\n"
    assert "warning" in result.stderr and "cannot be verified" in flat(result.stderr)
    assert cli("model", "path", url).stdout == result.stdout


def test_path_of_an_uncached_model_is_exit_2_with_a_hint(cli, server, hub_env, publish):
    file, _ = publish()
    missing = cli("model", "path", "tasnet")
    assert missing.exit_code == 2
    assert "ugosa model download tasnet" in flat(missing.stderr)
    cli("model", "download")
    found = cli("model", "path", "tasnet")
    assert found.exit_code == 0 and found.stdout == f"{hub_env / file}\n"
    assert cli("model", "path", "nosuch").exit_code == 2


def test_import_then_use_offline_then_remove(cli, server, hub_env, publish, tmp_path, monkeypatch):
    file, content = publish()
    source = tmp_path / file
    source.write_bytes(content)
    monkeypatch.setenv("UGOSA_OFFLINE", "1")

    imported = cli("model", "import", str(source))
    assert imported.exit_code == 0, imported.stderr
    assert imported.stdout == f"{hub_env / file}\n"
    assert "'tasnet'" in imported.stderr
    assert cli("model", "path", "tasnet").stdout == imported.stdout
    assert hub.resolve_model("tasnet").sha256 == hashlib.sha256(content).hexdigest()

    removed = cli("model", "remove", "tasnet")
    assert removed.exit_code == 0 and removed.stdout == imported.stdout
    assert not (hub_env / file).exists()
    again = cli("model", "remove", "tasnet")
    assert again.exit_code == 2 and "not in the model cache" in flat(again.stderr)
    assert server.requests == []


def test_import_with_a_wrong_hash_is_refused(cli, hub_env, publish, tmp_path):
    publish()
    impostor = tmp_path / "tasnet.th"
    impostor.write_bytes(b"\x00" * 64)
    result = cli("model", "import", str(impostor), "--name", "tasnet")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert hub.cached_paths("tasnet") is None


def test_import_under_a_new_name_is_listed_and_usable(cli, hub_env, tiny_model, tmp_path):
    source = tmp_path / "adapted.th"
    source.write_bytes(model_bytes(tiny_model, tmp_path, checkpoint=True))
    result = cli("model", "import", str(source), "--name", "my_song", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"name": "my_song", "path": str(hub_env / "imported" / "my_song.th")}
    rows = {row["name"]: row for row in json.loads(cli("model", "list", "--json").stdout)["models"]}
    assert rows["my_song"]["kind"] == "imported" and rows["my_song"]["available"] is True
    assert hub.resolve_model("my_song").name == "my_song"
