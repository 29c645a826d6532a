"""PACS options without a server: credentials (env or file, never argv), option combinations
refused before anything runs, the --studies file."""

import argparse
import base64

import pytest

from VoxTellCore.cli import main
from VoxTellCore.commands import predict
from VoxTellCore.errors import InputError
from VoxTellCore.pacs.auth import auth_headers
from VoxTellCore.pacs.dimse import DimsePeer
from VoxTellCore.pacs.options import studies_of


def test_credentials_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXTELL_PACS_AUTH", "alice:pa:ss")
    assert auth_headers(None, "VOXTELL_PACS_AUTH") == {
        "Authorization": "Basic " + base64.b64encode(b"alice:pa:ss").decode()}
    token = tmp_path / "token"
    token.write_text("Bearer abc.def\n")
    assert auth_headers(str(token), "VOXTELL_PACS_AUTH") == {"Authorization": "Bearer abc.def"}
    monkeypatch.delenv("VOXTELL_PACS_AUTH")
    assert auth_headers(None, "VOXTELL_PACS_AUTH") == {}
    token.write_text("just-a-password")
    with pytest.raises(InputError, match="neither user:password nor 'Bearer TOKEN'"):
        auth_headers(str(token), "VOXTELL_PACS_AUTH")


def test_no_option_takes_a_secret_on_the_command_line():
    parser = argparse.ArgumentParser()
    predict.add_arguments(parser)
    secret_words = ("password", "token", "user", "secret")
    options = [option for action in parser._actions for option in action.option_strings]
    assert not [option for option in options if any(word in option for word in secret_words)]


@pytest.mark.parametrize("argv, message", [
    (["--dicomweb", "http://x/dicom-web", "-i", "a"], "drop -i/--input"),
    (["--dicomweb", "http://x/dicom-web"], "exactly one of --study UID or --studies FILE"),
    (["--study", "1.2.3", "-o", "out"], "add --dicomweb URL"),
    (["-i", "ct", "--store"], "add --dicomweb URL, or name the target with --store-to"),
    (["--dicomweb", "http://x/dicom-web", "--study", "1.2", "--store", "--format", "nifti"], "--format nifti is not one"),
    (["--dicomweb", "http://x/dicom-web", "--study", "1.2"], "pass -o OUTPUT_FOLDER, or --store"),
    (["-i", "ct", "--store-to", "dicom://TOOLONGAETITLE1234@host:104"], "is not a DIMSE address"),
])
def test_unusable_option_combinations_are_exit_2(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(predict, "make_predictor", lambda args: pytest.fail("the model must not load"))
    assert main(["predict", "-p", "liver", *argv]) == 2
    assert message in capsys.readouterr().err


def test_studies_file_lines_comments_and_series(tmp_path):
    studies = tmp_path / "studies.txt"
    studies.write_text("1.2.3\n\n# comment\n1.2.4 1.2.4.5  # the CT\n1.2.3\n")
    args = argparse.Namespace(study=None, studies=str(studies), series=None)
    assert studies_of(args) == [("1.2.3", None), ("1.2.4", "1.2.4.5")]
    studies.write_text("1.2.3 1.2.3.4 extra\n")
    with pytest.raises(InputError, match="line 1"):
        studies_of(args)


def test_dimse_address_is_parsed():
    peer = DimsePeer("dicom://ORTHANC@pacs.example:4242")
    assert (peer.called_aet, peer.host, peer.port) == ("ORTHANC", "pacs.example", 4242)
