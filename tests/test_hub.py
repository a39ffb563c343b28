"""The model hub against a real HTTP server on 127.0.0.1: downloads, cache, verification, offline mode."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import urllib.request
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from ugosa_cli import hub
from ugosa_cli.checkpoint import save_checkpoint
from ugosa_cli.errors import InputError, RunError
from ugosa_cli.models.convtasnet import ConvTasNet


class ModelServer:
    """Serves ``files`` (path -> bytes); ``truncated`` paths send half the body and hang up."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncated: set[str] = set()
        self.unsized: set[str] = set()  # sent without Content-Length, the end marked by closing the connection
        self.announced: dict[str, int] = {}  # a Content-Length other than the body's
        self.redirects: dict[str, str] = {}
        self.requests: list[str] = []
        self.chunk_pause = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0].lstrip("/")
                owner.requests.append(path)
                if path in owner.redirects:
                    self.send_response(302)
                    self.send_header("Location", owner.redirects[path])
                    self.end_headers()
                    return
                body = owner.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if path not in owner.unsized:
                    self.send_header("Content-Length", str(owner.announced.get(path, len(body))))
                self.end_headers()
                if path in owner.truncated:
                    self.wfile.write(body[: len(body) // 2])
                    return
                step = max(1, len(body) // 8)
                try:
                    for start in range(0, len(body), step):
                        self.wfile.write(body[start : start + step])
                        self.wfile.flush()
                        time.sleep(owner.chunk_pause)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a refused download)
                    return

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def url(self, path: str) -> str:
        return self.root + path


def model_bytes(model: ConvTasNet, tmp_path: Path, *, checkpoint: bool = False) -> bytes:
    """A model file's bytes: our checkpoint format, or a bare demucs-style state dict."""
    if checkpoint:
        path = tmp_path / "ckpt.th"
        save_checkpoint(path, model, {"note": "test"})
        return path.read_bytes()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def hashed_name(stem: str, content: bytes) -> str:
    return f"{stem}-{hashlib.sha256(content).hexdigest()[:8]}.th"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    srv = ModelServer()
    thread = threading.Thread(target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def hub_env(server: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Cache in tmp_path, registry root on the local server, online; returns the models folder."""
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("UGOSA_MODEL_ROOT", server.url("models/"))
    monkeypatch.delenv("UGOSA_OFFLINE", raising=False)
    return tmp_path / "cache" / "models"


@pytest.fixture
def publish(server: ModelServer, tiny_model: ConvTasNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Serve a model file under ``models/`` and point registry entry ``name`` at it; returns (file, bytes).

    The real registry files' hashes cannot be forged, so tests swap the entry for one naming the test file.
    """

    def make(name: str = "tasnet", content: bytes | None = None, file: str | None = None) -> tuple[str, bytes]:
        content = model_bytes(tiny_model, tmp_path) if content is None else content
        file = file or hashed_name(name, content)
        server.files[f"models/{file}"] = content
        monkeypatch.setitem(hub.REGISTRY, name, hub.ModelEntry(name, file, f"test {name}"))
        return file, content

    return make


def leftovers(folder: Path) -> list[str]:
    """Files in the cache other than lock files."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_fresh_download_then_cached_run_makes_no_request(server, hub_env, publish):
    file, content = publish()
    calls: list[tuple[int, int | None]] = []
    loaded = hub.resolve_model("tasnet", progress=lambda done, total: calls.append((done, total)))
    assert loaded.name == "tasnet"
    assert loaded.sha256 == hashlib.sha256(content).hexdigest()
    assert (hub_env / file).read_bytes() == content
    assert server.requests == [f"models/{file}"]
    assert calls[0] == (0, len(content)) and calls[-1] == (len(content), len(content))
    assert hub.cached_paths("tasnet") == [hub_env / file]

    again = hub.resolve_model("tasnet", progress=lambda done, total: calls.append((done, total)))
    assert again.sha256 == loaded.sha256
    assert len(server.requests) == 1


def test_hash_mismatch_deletes_the_download_and_names_both_prefixes(server, hub_env, publish):
    _, content = publish(file="tasnet-00000000.th")
    with pytest.raises(RunError) as err:
        hub.ensure_model("tasnet")
    message = err.value.message
    assert "expected 00000000" in message and hashlib.sha256(content).hexdigest()[:8] in message
    assert "\n" not in message
    assert leftovers(hub_env) == []
    assert hub.cached_paths("tasnet") is None


def test_connection_dropped_halfway_leaves_no_file(server, hub_env, publish):
    file, content = publish()
    server.truncated.add(f"models/{file}")
    with pytest.raises(RunError, match="interrupted") as err:
        hub.resolve_model("tasnet")
    assert f"of {len(content)} bytes" in err.value.message
    assert leftovers(hub_env) == []


def test_a_download_without_length_is_read_to_its_end_but_never_past_the_limit(server, hub_env, publish, monkeypatch):
    file, content = publish()
    server.unsized.add(f"models/{file}")
    assert hub.ensure_model("tasnet")[0].read_bytes() == content  # no Content-Length: read until the server closes
    hub.remove_model("tasnet")
    monkeypatch.setattr(hub, "MAX_DOWNLOAD_BYTES", len(content) // 2)
    with pytest.raises(RunError, match="stopped: over") as err:
        hub.ensure_model("tasnet")
    assert server.url(f"models/{file}") in err.value.message and "\n" not in err.value.message
    assert leftovers(hub_env) == []


def test_a_download_announcing_more_than_the_limit_is_refused_before_reading(server, hub_env, publish, monkeypatch):
    file, _ = publish()
    server.announced[f"models/{file}"] = 10**15
    server.chunk_pause = 0.5  # the body would take seconds: refusing must not read it
    began = time.monotonic()
    with pytest.raises(RunError, match="announces 1000000000000000 bytes"):
        hub.ensure_model("tasnet")
    assert time.monotonic() - began < 2 and leftovers(hub_env) == []


def test_http_error_names_the_url(server, hub_env, monkeypatch):
    monkeypatch.setitem(hub.REGISTRY, "tasnet", hub.ModelEntry("tasnet", "gone-12345678.th", "missing"))
    with pytest.raises(RunError) as err:
        hub.ensure_model("tasnet")
    assert "HTTP 404" in err.value.message and server.url("models/gone-12345678.th") in err.value.message
    assert leftovers(hub_env) == []


def test_a_stalled_server_times_out_without_leaving_a_file(server, hub_env, publish, monkeypatch):
    publish()
    server.chunk_pause = 0.5
    monkeypatch.setattr(hub, "SOCKET_TIMEOUT_S", 0.1)
    with pytest.raises(RunError, match="interrupted"):
        hub.ensure_model("tasnet")
    assert leftovers(hub_env) == []


def test_unreachable_server_is_one_clear_error(hub_env, monkeypatch):
    monkeypatch.setenv("UGOSA_MODEL_ROOT", "http://127.0.0.1:9/")  # the discard port: nothing listens
    with pytest.raises(RunError, match="cannot reach http://127.0.0.1:9/tasnet-beb46fac.th"):
        hub.ensure_model("tasnet")


@pytest.mark.parametrize("how", ["env", "flag"])
def test_offline_never_touches_the_network_and_says_how_to_import(how, server, hub_env, publish, monkeypatch):
    file, _ = publish()
    if how == "env":
        monkeypatch.setenv("UGOSA_OFFLINE", "1")
    with pytest.raises(RunError) as err:
        hub.resolve_model("tasnet", offline=how == "flag")
    assert server.requests == []
    assert server.url(f"models/{file}") in err.value.message
    assert f"ugosa model import {file}" in err.value.message


def test_offline_uses_the_cache(server, hub_env, publish):
    publish()
    hub.ensure_model("tasnet")
    assert hub.resolve_model("tasnet", offline=True).name == "tasnet"
    assert len(server.requests) == 1


def test_url_with_hash_suffix_is_verified_and_cached(server, hub_env, tiny_model, tmp_path):
    content = model_bytes(tiny_model, tmp_path, checkpoint=True)
    file = hashed_name("adapted", content)
    server.files[f"share/{file}"] = content
    url = server.url(f"share/{file}")
    loaded = hub.resolve_model(url, on_warning=pytest.fail)
    assert loaded.name == file[: -len(".th")]
    assert loaded.provenance == {"note": "test"}
    assert hub.url_cache_path(url).read_bytes() == content
    hub.resolve_model(url, on_warning=pytest.fail)
    assert len(server.requests) == 1


def test_url_whose_content_does_not_match_its_hash_is_refused(server, hub_env, tiny_model, tmp_path):
    server.files["share/adapted-deadbeef.th"] = model_bytes(tiny_model, tmp_path)
    with pytest.raises(RunError, match="expected deadbeef"):
        hub.resolve_model(server.url("share/adapted-deadbeef.th"))
    assert leftovers(hub_env) == []


def test_url_without_hash_suffix_is_cached_with_a_warning(server, hub_env, tiny_model, tmp_path):
    server.files["share/plain.th"] = model_bytes(tiny_model, tmp_path)
    url = server.url("share/plain.th")
    warnings: list[str] = []
    loaded = hub.resolve_model(url, on_warning=warnings.append)
    assert loaded.name == "plain"
    assert len(warnings) == 1 and "cannot be verified" in warnings[0] and url in warnings[0]
    hub.resolve_model(url, on_warning=warnings.append)
    assert len(server.requests) == 1


def test_same_file_name_at_two_urls_does_not_clash(server, hub_env, tiny_model, tmp_path):
    server.files["a/plain.th"] = model_bytes(tiny_model, tmp_path)
    torch.manual_seed(1)
    server.files["b/plain.th"] = model_bytes(ConvTasNet(tiny_model.config), tmp_path)
    first = hub.resolve_model(server.url("a/plain.th"), on_warning=lambda _: None)
    second = hub.resolve_model(server.url("b/plain.th"), on_warning=lambda _: None)
    assert first.sha256 != second.sha256


def test_redirect_from_https_to_http_is_refused():
    handler = hub.NoDowngradeRedirect()
    request = urllib.request.Request("https://models.example/tasnet-beb46fac.th")
    insecure = "http://mirror.example/tasnet-beb46fac.th"
    with pytest.raises(RunError, match=f"insecure {insecure}"):
        handler.redirect_request(request, io.BytesIO(), 302, "Found", Message(), insecure)
    followed = handler.redirect_request(request, io.BytesIO(), 302, "Found", Message(), "https://mirror.example/x.th")
    assert followed.full_url == "https://mirror.example/x.th"


def test_plain_redirects_are_followed(server, hub_env, tiny_model, tmp_path, monkeypatch):
    content = model_bytes(tiny_model, tmp_path)
    real = hashed_name("tasnet", content)
    server.files[f"mirror/{real}"] = content
    server.redirects[f"models/{real}"] = server.url(f"mirror/{real}")
    monkeypatch.setitem(hub.REGISTRY, "tasnet", hub.ModelEntry("tasnet", real, "test"))
    assert hub.resolve_model("tasnet").sha256 == hashlib.sha256(content).hexdigest()
    assert server.requests == [f"models/{real}", f"mirror/{real}"]


def test_concurrent_downloads_make_one_request_and_one_good_file(server, hub_env, publish):
    file, content = publish()
    server.chunk_pause = 0.02
    start = threading.Barrier(2)
    results: list[list[Path] | BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            results.append(hub.ensure_model("tasnet"))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[hub_env / file], [hub_env / file]]
    assert server.requests == [f"models/{file}"]
    assert (hub_env / file).read_bytes() == content
    assert leftovers(hub_env) == [file]


class RunsCode:
    """Unpickling this object runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_a_pickle_with_code_is_refused_and_never_run(server, hub_env, tiny_model, tmp_path):
    marker = tmp_path / "code-ran"
    state = dict(tiny_model.state_dict())
    state["payload"] = RunsCode(marker)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    content = buffer.getvalue()
    torch.load(io.BytesIO(content), weights_only=False)  # prove the payload is live when unpickled naively
    assert marker.exists()
    marker.unlink()

    file = hashed_name("evil", content)
    server.files[f"share/{file}"] = content
    with pytest.raises(InputError, match="refused"):
        hub.resolve_model(server.url(f"share/{file}"))
    local = tmp_path / file
    local.write_bytes(content)
    with pytest.raises(InputError, match="refused"):
        hub.resolve_model(str(local))
    with pytest.raises(InputError, match="refused"):
        hub.import_model(local)
    assert not marker.exists()
    assert hub.imported_names() == []


def test_unknown_name_lists_known_models_and_other_forms(hub_env):
    with pytest.raises(InputError) as err:
        hub.resolve_model("tasnett")
    assert "tasnet, tasnet_extra" in err.value.message
    assert "path" in err.value.message and "URL" in err.value.message


@pytest.mark.parametrize("spec", ["missing/model.th", "./nothing", "absent.th"])
def test_a_path_that_does_not_exist_is_no_such_file(spec, hub_env):
    with pytest.raises(InputError, match="no such file"):
        hub.resolve_model(spec)


def test_a_folder_or_empty_spec_is_bad_input(hub_env, tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        hub.resolve_model(str(tmp_path))
    with pytest.raises(InputError, match="unknown model ''"):
        hub.resolve_model("")


def test_other_url_schemes_are_refused(hub_env):
    with pytest.raises(InputError, match="only http:// and https://"):
        hub.resolve_model("ftp://example.org/tasnet-beb46fac.th")


@pytest.mark.parametrize("checkpoint", [False, True])
def test_local_files_load_in_both_formats(checkpoint, hub_env, tiny_model, tmp_path):
    content = model_bytes(tiny_model, tmp_path, checkpoint=checkpoint)
    path = tmp_path / "mine.th"
    path.write_bytes(content)
    loaded = hub.resolve_model(str(path))
    assert loaded.name == "mine" and loaded.sha256 == hashlib.sha256(content).hexdigest()
    for key, tensor in tiny_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], tensor)


def test_a_local_file_named_with_a_wrong_hash_is_refused(hub_env, tiny_model, tmp_path):
    path = tmp_path / "mine-0badc0de.th"
    path.write_bytes(model_bytes(tiny_model, tmp_path))
    with pytest.raises(InputError, match="expected 0badc0de"):
        hub.resolve_model(str(path))


def test_a_corrupted_cache_entry_is_removed_and_downloaded_again_by_the_next_run(server, hub_env, publish):
    file, content = publish()
    hub.ensure_model("tasnet")
    (hub_env / file).write_bytes(b"bit rot")
    with pytest.raises(RunError, match="removed from the model cache; run the command again to download it again"):
        hub.resolve_model("tasnet")
    assert leftovers(hub_env) == []
    assert hub.resolve_model("tasnet").sha256 == hashlib.sha256(content).hexdigest()
    assert (hub_env / file).read_bytes() == content and len(server.requests) == 2


def test_packaged_entries_never_download_and_are_verified(server, hub_env, tiny_model, tmp_path, monkeypatch):
    packaged = tmp_path / "package_models"
    packaged.mkdir()
    content = model_bytes(tiny_model, tmp_path, checkpoint=True)
    file = hashed_name("demo", content)
    (packaged / file).write_bytes(content)
    monkeypatch.setattr(hub, "PACKAGED_DIR", packaged)
    monkeypatch.setitem(hub.REGISTRY, "demo", hub.ModelEntry("demo", file, "small demo", packaged=True))

    assert hub.resolve_model("demo", offline=True).name == "demo"
    demo = next(row for row in hub.list_models() if row.name == "demo")
    assert demo.available and demo.kind == "packaged" and demo.url is None and demo.size == len(content)
    assert server.requests == []
    with pytest.raises(InputError, match="cannot be removed"):
        hub.remove_model("demo")

    (packaged / file).write_bytes(content[:-1] + b"x")
    with pytest.raises(RunError, match="reinstall ugosa"):
        hub.resolve_model("demo")


def test_import_a_registry_file_then_use_it_offline(server, hub_env, publish, tmp_path):
    file, content = publish()
    source = tmp_path / "downloads" / file
    source.parent.mkdir()
    source.write_bytes(content)
    assert hub.import_model(source) == ("tasnet", hub_env / file)
    assert hub.resolve_model("tasnet", offline=True).sha256 == hashlib.sha256(content).hexdigest()
    assert server.requests == []


def test_import_under_a_registry_name_checks_that_models_hash(server, hub_env, publish, tiny_model, tmp_path):
    publish()
    torch.manual_seed(3)
    other = tmp_path / "renamed.th"
    other.write_bytes(model_bytes(ConvTasNet(tiny_model.config), tmp_path))
    with pytest.raises(InputError, match="not the 'tasnet' model file"):
        hub.import_model(other, name="tasnet")
    assert hub.cached_paths("tasnet") is None
    assert leftovers(hub_env) == []


def test_import_refuses_files_that_are_not_models(hub_env, tmp_path):
    junk = tmp_path / "junk.th"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(InputError, match="junk.th"):
        hub.import_model(junk)
    with pytest.raises(InputError, match="no such file"):
        hub.import_model(tmp_path / "absent.th")
    with pytest.raises(InputError, match="--name"):
        hub.import_model(junk, name="../escape")


def test_an_imported_model_resolves_by_name_and_can_be_removed(hub_env, tiny_model, tmp_path):
    source = tmp_path / "adapted.th"
    source.write_bytes(model_bytes(tiny_model, tmp_path, checkpoint=True))
    name, path = hub.import_model(source, name="my_song")
    assert name == "my_song" and path.is_file()
    assert "my_song" in hub.known_names()
    assert hub.resolve_model("my_song").name == "my_song"
    assert hub.remove_model("my_song") == [path]
    assert not path.exists()
    with pytest.raises(InputError, match="unknown model 'my_song'"):
        hub.resolve_model("my_song")


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert hub.models_dir() == tmp_path / "elsewhere" / "models"
    monkeypatch.delenv("UGOSA_CACHE_DIR")
    assert "ugosa" in hub.cache_dir().parts
    monkeypatch.delenv("UGOSA_MODEL_ROOT", raising=False)
    assert hub.REGISTRY["tasnet"].url == "https://dl.fbaipublicfiles.com/demucs/v3.0/tasnet-beb46fac.th"
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("UGOSA_MODEL_ROOT", "file:///models")
    with pytest.raises(InputError, match="UGOSA_MODEL_ROOT"):
        hub.ensure_model("tasnet")
