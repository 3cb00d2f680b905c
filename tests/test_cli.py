"""The command line: tables, round trips, encode/decode files, readable errors, no overwrite."""

from __future__ import annotations

import pytest

from evalkit.audio import load, save
from evalkit.cli import main
from evalkit.signals import white_noise


@pytest.fixture
def wav(tmp_path):
    return save(white_noise(1.0), tmp_path / "in.wav")


def test_codecs_table(capsys):
    assert main(["codecs"]) == 0
    out = capsys.readouterr().out
    assert "reference" in out and "codec cards available" in out


def test_roundtrip_prints_bitrate_and_latency(tmp_path, wav, capsys):
    out_path = tmp_path / "out.wav"
    assert main(["roundtrip", str(wav), "--codec", "reference", "-o", str(out_path)]) == 0
    printed = capsys.readouterr().out
    assert "kbit/s payload" in printed and "measured 0 samples" in printed
    assert load(out_path).frames == 16000


def test_encode_then_decode(tmp_path, wav):
    bits, out = tmp_path / "x.evk", tmp_path / "x.wav"
    assert main(["encode", str(wav), "--codec", "reference", "-o", str(bits)]) == 0
    assert main(["decode", str(bits), "--codec", "reference", "-o", str(out)]) == 0
    assert load(out).frames == 16000


def test_encode_refuses_to_name_a_bitstream_like_audio(tmp_path, wav, capsys):
    assert main(["encode", str(wav), "--codec", "reference", "-o", str(tmp_path / "x.WAV")]) == 1
    assert "encode writes an evalkit bitstream, not audio; name it .evk" in capsys.readouterr().err
    assert not (tmp_path / "x.WAV").exists()


def test_errors_are_one_line_and_nothing_is_overwritten(tmp_path, wav, capsys):
    existing = tmp_path / "keep.wav"
    existing.write_bytes(b"precious")
    assert main(["roundtrip", str(wav), "--codec", "reference", "-o", str(existing)]) == 1
    assert existing.read_bytes() == b"precious"
    assert main(["roundtrip", str(tmp_path / "nope.wav"), "--codec", "reference", "-o", str(tmp_path / "o.wav")]) == 1
    assert main(["roundtrip", str(wav), "--codec", "no-such-codec", "-o", str(tmp_path / "o.wav")]) == 1
    bad_bits = tmp_path / "bad.evk"
    bad_bits.write_bytes(b"garbage")
    assert main(["decode", str(bad_bits), "--codec", "reference", "-o", str(tmp_path / "d.wav")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("evalkit: error:") for line in errors)
    assert "no such file" in errors[1] and "unknown codec" in errors[2] and "bitstream" in errors[3]


@pytest.mark.parametrize("hash_set", [False, True])
def test_app_says_when_no_admin_password_is_set(monkeypatch, capsys, hash_set):
    from evalkit.listening.auth import ENV_VAR

    monkeypatch.setattr("evalkit.report.serve.serve_app", lambda *args, **kwargs: 0)  # no Streamlit here
    monkeypatch.delenv(ENV_VAR, raising=False)
    if hash_set:
        monkeypatch.setenv(ENV_VAR, "scrypt$16384$8$1$00$00")
    import socket

    with socket.create_server(("127.0.0.1", 0)) as probe:  # a port free now, for the start-up check
        port = probe.getsockname()[1]
    assert main(["app", "--address", "127.0.0.1", "--port", str(port)]) == 0
    err = capsys.readouterr().err
    assert ("no admin password is set" in err) is not hash_set
    if not hash_set:
        assert f"${ENV_VAR}" in err and "python -m evalkit.listening.auth" in err


@pytest.mark.parametrize(
    "typed, message",
    [
        ("", "no password was given"),
        ("short\nshort\n", "at least 8 characters"),
        ("longer-one\nlonger-two\n", "differ"),
    ],
)
def test_making_an_admin_password_hash_fails_in_one_line(typed, message):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "evalkit.listening.auth"], input=typed, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("evalkit: error:") and message in done.stderr


def test_making_an_admin_password_hash_prints_it_and_has_help():
    import subprocess
    import sys

    made = subprocess.run(
        [sys.executable, "-m", "evalkit.listening.auth"],
        input="long-enough\nlong-enough\n",
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0 and made.stdout.startswith("scrypt$")
    helped = subprocess.run([sys.executable, "-m", "evalkit.listening.auth", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "EVALKIT_ADMIN_PASSWORD_HASH" in helped.stdout


def test_a_reader_that_stops_early_is_not_an_error():
    # `evalkit codecs | head -1`: the pipe closes before evalkit has written; no "Broken pipe" error line.
    import subprocess
    import sys

    listing = subprocess.Popen(
        [sys.executable, "-m", "evalkit", "codecs"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    listing.stdout.close()  # the reader is gone before evalkit has started
    err = listing.stderr.read().decode()
    assert listing.wait(timeout=60) == 141 and err == ""
