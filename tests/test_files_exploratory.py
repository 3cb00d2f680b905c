"""Files that reach evalkit from other people: codec cards, weight files and bitstreams it refuses
with one line naming the file, without a traceback, code execution or an allocation the file steers."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from evalkit.audio import Audio
from evalkit.cards import load_cards
from evalkit.errors import CodecError, ConfigError
from evalkit.neural.bundle import read_npz
from evalkit.resources import cards_dir

WEIGHTS = cards_dir() / "weights"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _laughs(levels: int) -> str:
    """A card whose licence is `levels` nested lists of nine aliases each: 9**levels strings."""
    lines = ["name: bomb", "backend: opus", "params:", "  l0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join([*lines, f"licence: *a{levels - 1}", ""])


def test_a_card_of_nested_aliases_is_refused_before_anything_expands_it(tmp_path):
    (tmp_path / "bomb.yaml").write_text(_laughs(7))  # 4.8 million strings once expanded
    with pytest.raises(ConfigError, match=r"bomb.yaml: cannot read codec card: its aliases \(\*name\) expand to"):
        load_cards(tmp_path)


def test_a_card_with_a_few_aliases_still_reads(tmp_path):
    (tmp_path / "ok.yaml").write_text(
        "name: aliased\nbackend: opus\nparams: &p {sample_rate: 48000, bitrate: 12000}\ndescription: &d same\nnotes: *d\n"
    )
    assert load_cards(tmp_path)["aliased"].notes == "same"


# -- weight files ------------------------------------------------------------------------------


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _claim_shape(path, shape: tuple) -> None:
    """Rewrite the header of the .npz's first array to declare `shape` (its bytes unchanged)."""
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    info, raw = members[0]
    length = int.from_bytes(raw[8:10], "little")
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".ljust(length - 1) + "\n"
    members[0] = (info, raw[:10] + header.encode() + raw[10 + length :])
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in members:
            archive.writestr(info.filename, data)


def test_an_array_header_declaring_gigabytes_is_refused_before_numpy_allocates_them(tmp_path):
    path = _npz(tmp_path / "w.npz", basis=np.zeros(4, np.float32))
    _claim_shape(path, (10**10,))  # 40 GB declared, 16 bytes held
    with pytest.raises(ValueError, match=r"w.npz: not a test weights file .*declares shape \(10000000000,\)"):
        read_npz(path, "test")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[: len(b) // 2], "BadZipFile"),
        (lambda b: b"", "BadZipFile"),
        (lambda b: b"\x93NUMPY" + bytes(50), "BadZipFile"),
    ],
    ids=["truncated", "empty", "bare-npy"],
)
def test_a_damaged_weights_file_is_one_line_naming_it(tmp_path, damage, message):
    path = _npz(tmp_path / "w.npz", basis=np.ones((3, 4), np.float32))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=rf"w.npz: not a test weights file \({message}"):
        read_npz(path, "test")


def test_object_arrays_and_non_finite_weights_are_refused(tmp_path):
    objects = _npz(tmp_path / "objects.npz", basis=np.array([print, 1], dtype=object))
    with pytest.raises(ValueError, match="holds Python objects, which are never loaded"):
        read_npz(objects, "test")
    nan = _npz(tmp_path / "nan.npz", basis=np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="nan.npz: array 'basis' of the test weights holds NaN"):
        read_npz(nan, "test")
    assert read_npz(_npz(tmp_path / "ok.npz", basis=np.ones(3), steps=np.arange(3)), "test")["steps"].tolist() == [
        0,
        1,
        2,
    ]


def test_a_codec_built_on_a_truncated_weights_file_names_the_file(tmp_path):
    from evalkit.lpcnet.codec import LPCNetCodec

    source = WEIGHTS / "lpcnet-16k-small-v1.npz"
    path = tmp_path / "cut.npz"
    path.write_bytes(source.read_bytes()[:100_000])
    with pytest.raises(ConfigError, match=r"cut.npz: not an LPCNet weights file \(BadZipFile"):
        LPCNetCodec(str(path), _sha(path))


def _shipped_with(name: str, tmp_path, change) -> Path:
    """The shipped weights file `name` with `change(arrays, config)` applied, saved beside the test."""
    with np.load(WEIGHTS / name) as data:
        arrays = {key: data[key] for key in data.files}
    config = json.loads(arrays["config"].tobytes())
    change(arrays, config)
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), np.uint8)
    return _npz(tmp_path / "changed.npz", **arrays)


def _roundtrip_error(path: Path) -> str:
    from evalkit.lpcnet.codec import LPCNetCodec

    codec = LPCNetCodec(str(path), _sha(path))
    audio = Audio(0.1 * np.sin(np.arange(4800) * 0.05)[None].astype(np.float32), 16000, "tone")
    with pytest.raises(CodecError) as caught:
        codec.decode(codec.encode(audio))
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_vocoder_tensors_of_the_wrong_shape_are_one_line_naming_them(tmp_path):
    def reshape(arrays, config):
        arrays["vocoder.subframe_net.gru1.weight_hh"] = np.zeros((3, 5), np.float16)

    message = _roundtrip_error(_shipped_with("lpcnet-16k-small-v1.npz", tmp_path, reshape))
    assert "the vocoder tensors vocoder.* do not fit together" in message


@pytest.mark.parametrize("subframe", [0, -40, 7, 10**9, "40"])
def test_a_vocoder_subframe_that_does_not_divide_a_frame_is_refused(tmp_path, subframe):
    def set_subframe(arrays, config):
        config["vocoder_config"]["subframe"] = subframe

    assert "vocoder_config.subframe must divide 160 samples" in _roundtrip_error(
        _shipped_with("lpcnet-16k-small-v1.npz", tmp_path, set_subframe)
    )


# -- cards naming weights ----------------------------------------------------------------------


def test_a_cards_own_vocoder_is_found_beside_the_card(tmp_path):
    (tmp_path / "mine").mkdir()
    for name in ("predictive-16k-v1.npz", "lpcnet-16k-small-v1.npz"):
        (tmp_path / "mine" / f"my-{name}").write_bytes((WEIGHTS / name).read_bytes())
    pinned = {name: _sha(WEIGHTS / name) for name in ("predictive-16k-v1.npz", "lpcnet-16k-small-v1.npz")}
    (tmp_path / "my-pred.yaml").write_text(
        "name: my-pred\nbackend: predictive\nparams:\n"
        f"  {{weights: mine/my-predictive-16k-v1.npz, sha256: {pinned['predictive-16k-v1.npz']}, allocation: s2-fine40,\n"
        f"   vocoder: mine/my-lpcnet-16k-small-v1.npz, vocoder_sha256: {pinned['lpcnet-16k-small-v1.npz']}}}\n"
    )
    codec = load_cards(tmp_path)["my-pred"].build()
    assert codec.info.sample_rate == 16000


@pytest.mark.parametrize("target", ["folder", "/dev/zero"])
def test_a_weights_path_that_is_not_a_regular_file_says_so(tmp_path, target):
    path = tmp_path if target == "folder" else Path(target)
    (tmp_path / "c.yaml").write_text(f"name: odd\nbackend: lpcnet\nparams: {{weights: {path}, sha256: '{'0' * 64}'}}\n")
    with pytest.raises(ConfigError, match=rf"weights path {path} is not a regular file; point the card at the weights"):
        load_cards(tmp_path)["odd"].build()


def _rvq_checkpoint(tmp_path, change) -> Path:
    torch = pytest.importorskip("torch")
    data = torch.load(WEIGHTS / "rvq-16k-v1.pt", weights_only=True)
    change(data)
    torch.save(data, tmp_path / "changed.pt")
    return tmp_path / "changed.pt"


def _set_config(**values):
    def change(data):
        data["config"] = json.dumps({**json.loads(data["config"]), **values})

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_set_config(kernel=10**7), r"weights do not match the model its configuration describes \(encoder.0.weight"),
        (_set_config(latent_dim=10**7), "weights do not match the model its configuration describes"),
        (_set_config(kernel=None), "its model configuration cannot be built"),
        (lambda data: data.update(config="[1]"), r"no model configuration \(a JSON object\) under 'config'"),
        (lambda data: data.update(state_dict=[1, 2]), "the weights are not a mapping of names to tensors"),
        (
            lambda data: data["state_dict"]["encoder.0.weight"].fill_(float("nan")),
            "weights tensor encoder.0.weight holds NaN",
        ),
    ],
    ids=["kernel-1e7", "latent-1e7", "kernel-null", "config-list", "state-list", "nan"],
)
def test_an_rvq_checkpoint_whose_config_does_not_fit_its_tensors_is_refused_before_building(tmp_path, change, message):
    """A config declaring a 655 GB model beside 4 MB of tensors must not reach the allocator."""
    from evalkit.neural.model import load_inference

    path = _rvq_checkpoint(tmp_path, change)
    with pytest.raises(ConfigError, match=rf"changed.pt: {message}"):
        load_inference(path)


def _feed_fifo_if_read(path: Path, text: str, seconds: float = 2.0) -> threading.Thread:
    """Write `text` into the FIFO should anyone open it for reading within `seconds` (so a reader
    that should have refused it gets a card instead of hanging the test)."""

    def feed():
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                handle = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader yet
                time.sleep(0.05)
                continue
            os.write(handle, text.encode())
            os.close(handle)
            return

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


def test_a_card_that_is_a_pipe_or_a_device_is_refused_unread(tmp_path):
    """Reading a FIFO waits forever for a writer; /dev/zero never ends (10 GB before it was refused)."""
    os.mkfifo(tmp_path / "pipe.yaml")
    feeder = _feed_fifo_if_read(tmp_path / "pipe.yaml", "name: piped\nbackend: opus\n")
    broken: list[str] = []
    assert "piped" not in load_cards(tmp_path, broken=broken)
    assert broken == [
        f"{tmp_path / 'pipe.yaml'}: is not a regular file (a device or pipe?); give the codec card file itself"
    ]
    feeder.join()
    (tmp_path / "pipe.yaml").unlink()
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="zero.yaml: is not a regular file"):
        load_cards(tmp_path)


def test_a_card_folder_that_is_a_file_says_so(tmp_path):
    (tmp_path / "cards.yaml").write_text("name: x\nbackend: opus\n")
    with pytest.raises(ConfigError, match=r"cards.yaml \(from --cards\) is a file, not a folder"):
        load_cards(tmp_path / "cards.yaml")


@pytest.fixture(scope="module")
def tiny_adapters(tmp_path_factory):
    """Tiny random EnCodec and SNAC checkpoints (the fuzz test's builders)."""
    from evalkit.codecs import BACKENDS

    for backend in ("encodec", "snac"):
        if reason := BACKENDS.get(backend).unavailable():
            pytest.skip(reason)
    sys.path.insert(0, str(Path(__file__).parent))
    import fuzz_codecs

    folder = tmp_path_factory.mktemp("adapters")
    fuzz_codecs._tiny_encodec(folder)
    (folder / "snac").mkdir()
    fuzz_codecs._tiny_snac(folder / "snac")
    return folder


TINY_ENCODEC = {"n_filters": 2, "ratios": [8, 5, 4, 2], "dimension": 8, "lstm": 0, "target_bandwidths": [1.5, 3.0]}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_filters": 10**6}, "weights do not match the model its configuration describes"),  # 6 TB of convolutions
        ({"bins": 2**40}, "weights do not match the model its configuration describes"),
        ({"target_bandwidths": [1.5, 10**9]}, "1000000000 kbit/s needs about 1333333333 codebooks; the file holds 4"),
        ({"n_filters": None}, "its model configuration cannot be built"),
        ({"sample_rate": 0}, "architecture needs positive numbers"),
    ],
    ids=["filters-1e6", "bins-2e40", "bandwidth-1e9", "filters-null", "rate-0"],
)
def test_an_encodec_architecture_that_does_not_fit_its_checkpoint_is_refused_unbuilt(tiny_adapters, change, message):
    from evalkit.neural.adapters import EncodecAdapter

    path = tiny_adapters / "encodec.th"
    with pytest.raises(ConfigError, match=message):
        EncodecAdapter(str(path), _sha(path), 3.0, {**TINY_ENCODEC, **change})
    assert EncodecAdapter(str(path), _sha(path), 3.0, TINY_ENCODEC).n_q == 4  # the file as written still builds


def test_a_snac_config_that_does_not_fit_its_weights_is_refused_unbuilt(tiny_adapters, tmp_path):
    from evalkit.neural.adapters import SnacAdapter

    folder = tmp_path / "snac"
    folder.mkdir()
    weights = (tiny_adapters / "snac" / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(weights)
    config = json.loads((tiny_adapters / "snac" / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "decoder_dim": 10**7}))  # 1.6 PB of weights
    with pytest.raises(ConfigError, match=r"pytorch_model.bin: weights do not match the model its configuration"):
        SnacAdapter(str(folder), _sha(folder / "pytorch_model.bin"))
    (folder / "config.json").write_text(json.dumps({**config, "vq_strides": []}))
    with pytest.raises(ConfigError, match=r"pytorch_model.bin: weights do not match the model \(Error"):
        SnacAdapter(str(folder), _sha(folder / "pytorch_model.bin"))


def _set(key, value):
    def change(arrays, config):
        (config if key in config else arrays)[key] = value(arrays) if callable(value) else value

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_set("nmf.r16.q6.levels", lambda a: a["nmf.r16.q6.levels"] * 0 + 10**12), "levels must lie from 1 to the 52"),
        (_set("nmf.r16.q6.levels", lambda a: -a["nmf.r16.q6.levels"]), "levels must lie from 1 to the 52 columns"),
        (_set("nmf.r16.basis", lambda a: a["nmf.r16.basis"][:, :10]), r"nmf.r16.basis has shape \(16, 10\), expected"),
        (_set("configurations", 7), "configurations must be a list of"),
        (_set("nmf_divergence", [1]), "nmf_divergence must map beta to a number and power to a positive number"),
    ],
    ids=["levels-1e12", "levels-negative", "basis-bins", "configurations-int", "divergence-list"],
)
def test_a_low_rank_bundle_whose_arrays_disagree_is_refused_naming_the_array(tmp_path, change, message):
    from evalkit.nmf.codec import NMFCodec

    path = _shipped_with("nmf-16k-v1.npz", tmp_path, change)
    with pytest.raises(ConfigError, match=rf"changed.npz: .*{message}"):
        NMFCodec(str(path), _sha(path), "nmf", 16, 6.0)


def test_a_predictive_bundle_with_a_scalar_for_a_matrix_is_refused_naming_the_file(tmp_path):
    from evalkit.predictive.codec import PredictiveCodec

    path = _shipped_with("predictive-16k-v1.npz", tmp_path, _set("predictor.gru1.weight_hh_l0", np.float32(1.0)))
    vocoder = WEIGHTS / "lpcnet-16k-small-v1.npz"
    with pytest.raises(ConfigError, match=r"predictive: changed.npz is not a complete predictive bundle"):
        PredictiveCodec(str(path), _sha(path), "s2-fine40", str(vocoder), _sha(vocoder))


# -- bitstreams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [10**12, -1, 7, True])
def test_a_reference_stream_whose_header_names_an_impossible_rate_is_one_line(tmp_path, capsys, rate):
    """`evalkit decode --codec reference` builds the identity at the rate the header names."""
    from evalkit.cli import main
    from evalkit.codecs import Bitstream
    from evalkit.codecs.reference import Identity

    stream = Identity(16000).encode_packets(Audio(np.zeros((1, 1600), np.float32), 16000, "quiet"))
    (tmp_path / "s.evk").write_bytes(
        Bitstream(stream.backend, {**stream.header, "sample_rate": rate}, stream.packets).to_bytes()
    )
    assert main(["decode", "--codec", "reference", "-o", str(tmp_path / "out.wav"), str(tmp_path / "s.evk")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"s.evk: its header's sample rate {rate!r} does not fit reference" in error
    assert "sample_rate must be an integer from 1000 to 768000 Hz" in error


def test_a_zip_bomb_of_weights_is_refused_before_it_is_unpacked(tmp_path):
    """1.5 MB on disk, a 1.5 GB pickle inside: listing the codecs took 3 GB and 16 s."""
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data.pkl", "w", force_zip64=True) as member:
            for _ in range(20):
                member.write(bytes(1 << 24))  # 320 MB of zeros
    (tmp_path / "bomb.yaml").write_text(
        f"name: bomb\nbackend: rvq\nparams: {{weights: bomb.pt, sha256: '{_sha(path)}', n_q: 6}}\n"
    )
    with pytest.raises(ConfigError, match=r"bomb.pt unpacks to 335544320 bytes from \d+; .* refused as a zip bomb"):
        load_cards(tmp_path)["bomb"].build()


def test_decoding_a_device_is_refused_unread(tmp_path, capsys):
    """/dev/zero given as the bitstream was read until memory ran out."""
    from evalkit.cli import main

    assert main(["decode", "--codec", "opus-12k", "-o", str(tmp_path / "out.wav"), "/dev/zero"]) == 1
    assert capsys.readouterr().err == "evalkit: error: /dev/zero: is a device, not a bitstream file\n"


def test_a_mimi_config_declaring_more_layers_than_its_weights_is_refused_unbuilt(tmp_path):
    """config.json is not pinned by the card's sha256: 10^5 layers took 5 minutes and 8 GB."""
    from evalkit.codecs import BACKENDS

    if reason := BACKENDS.get("mimi").unavailable():
        pytest.skip(reason)
    sys.path.insert(0, str(Path(__file__).parent))
    import fuzz_codecs

    from evalkit.neural.adapters import MimiAdapter

    fuzz_codecs._tiny_mimi(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 10**5}))
    with pytest.raises(ConfigError, match="config.json declares 100000 transformer layers; model.safetensors holds 1"):
        MimiAdapter(str(tmp_path), _sha(tmp_path / "model.safetensors"), n_q=2)
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_size": 10**6}))
    with pytest.raises(ConfigError, match="config.json and model.safetensors do not fit"):
        MimiAdapter(str(tmp_path), _sha(tmp_path / "model.safetensors"), n_q=2)


def test_a_weights_param_that_is_not_a_path_names_what_it_got(tmp_path):
    (tmp_path / "c.yaml").write_text(
        f"name: listed\nbackend: lpcnet\nparams: {{weights: [a.npz], sha256: '{'0' * 64}'}}\n"
    )
    with pytest.raises(ConfigError, match=r"lpcnet: a weights path \(a string\) is required, got a list \['a.npz'\]"):
        load_cards(tmp_path)["listed"].build()


@pytest.mark.parametrize("groups", [True, 1, 10**9, "x"])
def test_a_personal_lpcnet_file_whose_group_count_disagrees_with_its_vocoders_is_refused(tmp_path, groups):
    """groups: true (1) beside three group vocoders let the encoder write group 2, which its decoder refused."""
    from evalkit.lpcnet.codec import PersonalLPCNetCodec

    path = _shipped_with("lpcnet-16k-personal-v1.npz", tmp_path, _set("groups", groups))
    generic = WEIGHTS / "lpcnet-16k-small-v1.npz"
    with pytest.raises(ConfigError, match="changed.npz: (no speaker groups in this file|its config names)"):
        PersonalLPCNetCodec(str(generic), _sha(generic), str(path), _sha(path))
