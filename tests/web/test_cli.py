"""`voxtell-web`'s refusals come before anything starts, with the fix in the message."""

from __future__ import annotations

from VoxTellWeb.cli import main


def test_an_empty_api_key_file_is_refused(tmp_path, capsys):
    empty = tmp_path / "key.txt"
    empty.write_text("")
    assert main(["--server-url", "http://127.0.0.1:1", "--api-key-file", str(empty)]) == 2
    assert "is empty: write the key on its first line" in capsys.readouterr().err


def test_a_bad_dicomweb_url_is_refused(capsys):
    assert main(["--dicomweb", "orthanc:8042"]) == 2
    assert "is not a DICOMweb URL" in capsys.readouterr().err
