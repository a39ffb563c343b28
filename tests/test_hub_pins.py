"""URLs pinned with ``#sha256=``: checked on download and on every load; configurations fetched by URL."""

from __future__ import annotations

import hashlib

import pytest
import torch
from test_hub import hub_env, leftovers, model_bytes, server  # noqa: F401 - the local model server
from test_msst_config import write_msst

from ugosa_cli import hub
from ugosa_cli.errors import InputError, RunError


def test_a_pinned_url_is_verified_and_loads_without_a_warning(server, hub_env, tiny_model, tmp_path, recwarn):
    content = model_bytes(tiny_model, tmp_path)
    server.files["m/model.th"] = content
    digest = hashlib.sha256(content).hexdigest()
    loaded = hub.resolve_model(server.url(f"m/model.th#sha256={digest[:12].upper()}"))
    assert loaded.sha256 == digest and not [w for w in recwarn if "cannot be verified" in str(w.message)]
    assert hub.locate(server.url("m/model.th")) == [hub.url_cache_path(server.url("m/model.th"))]  # one cache entry


def test_a_download_that_does_not_match_its_pin_is_deleted(server, hub_env, tiny_model, tmp_path):
    server.files["m/model.th"] = model_bytes(tiny_model, tmp_path)
    with pytest.raises(RunError, match="is corrupt: SHA-256 starts with .*, expected 00000000"):
        hub.resolve_model(server.url("m/model.th#sha256=00000000"))
    assert leftovers(hub_env) == []


def test_a_cached_file_that_no_longer_matches_its_pin_is_refused(server, hub_env, tiny_model, tmp_path):
    content = model_bytes(tiny_model, tmp_path)
    server.files["m/model.th"] = content
    cached = hub.resolve_model(server.url("m/model.th"))  # cached, unverified
    with pytest.raises(RunError, match="did not match the URL's #sha256= pin .* was removed from the model cache; run "
                       "the command again"):
        hub.resolve_model(server.url("m/model.th#sha256=0123456789abcdef"))
    assert not hub.url_cache_path(server.url("m/model.th")).exists()
    pin = hashlib.sha256(content).hexdigest()[:16]  # the right pin: downloaded again and verified
    assert hub.resolve_model(server.url(f"m/model.th#sha256={pin}")).sha256 == cached.sha256


@pytest.mark.parametrize("fragment", ["#md5=abc", "#sha256=xyz", "#sha256=1234", "#top"])
def test_any_other_fragment_is_refused(hub_env, fragment):
    with pytest.raises(InputError, match="the only fragment a URL takes is #sha256="):
        hub.resolve_model("https://example.org/model.th" + fragment)


def test_a_configuration_comes_from_a_url_too_and_is_bounded(server, hub_env, tmp_path, monkeypatch):
    config, ckpt, network = write_msst(tmp_path, "scnet")
    server.files["m/scnet.ckpt"] = ckpt.read_bytes()
    server.files["m/scnet.yaml"] = config.read_bytes()
    pin = hashlib.sha256(config.read_bytes()).hexdigest()
    loaded = hub.resolve_model(server.url("m/scnet.ckpt"), config=server.url(f"m/scnet.yaml#sha256={pin}"))
    assert torch.equal(loaded.model.state_dict()["encoder.0.globalconv.weight"], network.encoder[0].globalconv.weight)
    server.files["m/big.yaml"] = b"#" * (2 << 20)
    with pytest.raises(RunError, match="more than the 1 MiB such a file may have"):
        hub.resolve_model(server.url("m/scnet.ckpt"), config=server.url("m/big.yaml"))
