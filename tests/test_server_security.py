"""Item 5: a key is required off loopback, read from the environment or a file, compared in
constant time; TLS natively; ids unguessable; no pickle on either side."""

from __future__ import annotations

import ast
import hmac
import subprocess
import sys

import numpy as np
import pytest

from server_fixtures import ROOT, load_napari_client, serve, smooth_volume, tiny_model
from VoxTellCore.errors import InputError
from VoxTellCore.remote.client import RemotePredictor, ServerError, VoxTellClient
from VoxTellCore.server import security

KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("security"))


def test_key_from_the_environment_is_required_and_checked(model, tmp_path):
    folder, bank = model
    with serve(["-m", folder, "--embeddings", bank, "--device", "cpu"], tmp_path / "log",
               env={"VOXTELL_API_KEY": KEY}) as server:
        for key in (None, "wrong", KEY + "x"):
            with pytest.raises(ServerError, match="refused the API key"):
                VoxTellClient(server.url, key).version()
        assert VoxTellClient(server.url).get_json("/healthz") == {"ok": True}  # health needs no key
        volume = smooth_volume((20, 30, 30))
        masks = RemotePredictor(server.url, KEY).predict_volume(volume, ["liver"])
        assert masks.shape == (1, 20, 30, 30)
        napari = load_napari_client().VoxTellRemoteClient(server.url, api_key=KEY)
        assert napari.capabilities()["patch_size"] == [64, 64, 64]
        napari.close()
        assert KEY not in server.output()


def test_key_from_a_file(model, tmp_path):
    folder, bank = model
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    with serve(["-m", folder, "--embeddings", bank, "--device", "cpu", "--api-key-file", key_file],
               tmp_path / "log") as server:
        with pytest.raises(ServerError, match="refused the API key"):
            VoxTellClient(server.url).version()
        assert VoxTellClient(server.url, KEY).version()["protocol"] == 1


def run_serve(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "VoxTellCore.cli", "serve", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def test_non_loopback_without_a_key_is_refused_before_anything_loads(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "VOXTELL_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    result = run_serve("--host", "0.0.0.0", "-m", str(tmp_path / "no-model"), env=env)
    assert result.returncode == 2
    assert "Refusing to listen on 0.0.0.0 without an API key" in result.stderr
    assert "VOXTELL_API_KEY" in result.stderr and "--api-key-file" in result.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = run_serve("--api-key-file", str(empty), env=env)
    assert result.returncode == 2 and "is empty" in result.stderr


def test_exposure_rules():
    assert security.check_exposure("127.0.0.1", None, False) is None
    assert security.check_exposure("localhost", None, False) is None
    assert security.check_exposure("::1", None, False) is None
    assert security.check_exposure("0.0.0.0", KEY, False) is None
    with pytest.raises(InputError, match="without an API key"):
        security.check_exposure("10.1.2.3", None, False)
    assert "WARNING" in security.check_exposure("0.0.0.0", None, True)


def test_key_sources_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXTELL_API_KEY", "from-env")
    assert security.load_api_key("from-argv", None) == "from-env"
    (tmp_path / "k").write_text("from-file\nignored\n")
    assert security.load_api_key("from-argv", str(tmp_path / "k")) == "from-file"
    monkeypatch.delenv("VOXTELL_API_KEY")
    assert security.load_api_key("from-argv", None) == "from-argv"
    with pytest.raises(InputError, match="Cannot read --api-key-file"):
        security.load_api_key(None, str(tmp_path / "missing"))


def test_the_key_is_compared_in_constant_time(monkeypatch):
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert security.key_matches(f"Bearer {KEY}", KEY)
    assert not security.key_matches(None, KEY)
    assert compared == [(f"Bearer {KEY}".encode(), f"Bearer {KEY}".encode()), (b"", f"Bearer {KEY}".encode())]


def test_tls(model, tmp_path):
    folder, bank = model
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    args = ["-m", folder, "--embeddings", bank, "--device", "cpu", "--ssl-certfile", cert, "--ssl-keyfile", key]
    with serve(args, tmp_path / "log", scheme="https", wait=False) as server:
        client = VoxTellClient(server.url, ca_file=str(cert))
        for _ in range(300):  # bounded wait for the model to load
            try:
                assert client.version()["protocol"] == 1
                break
            except ServerError:
                assert server.process.poll() is None, server.output()
                import time
                time.sleep(0.2)
        else:
            raise TimeoutError(server.output())
        with pytest.raises(ServerError, match="CERTIFICATE_VERIFY_FAILED"):
            VoxTellClient(server.url).version()  # not trusted without the certificate
        with pytest.raises(ServerError):
            VoxTellClient(server.url.replace("https", "http"), ca_file=str(cert)).version()


def test_ids_are_unguessable(model, tmp_path):
    from VoxTellCore.server.images import ImageStore

    store = ImageStore(8, 10**9, 3600, 0, 1)
    ids = {store.add(smooth_volume((5, 5, 5), seed=seed), False).image_id for seed in range(5)}
    assert len(ids) == 5 and all(len(i) >= 32 for i in ids)


def test_no_pickle_in_the_server_or_the_client():
    for package in ("server", "remote"):
        for path in (ROOT / "VoxTellCore" / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                     for a in n.names} | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert not names & {"pickle", "cPickle", "dill", "joblib"}, path
            assert "allow_pickle" not in path.read_text(), path
