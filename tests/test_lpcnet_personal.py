"""Personalised LPCNet: speaker encoder (GE2E), speaker groups, the lpcnet-personal stream, the reference LPCNet."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from test_lpcnet import glottal_vowel, tiny_lpcnet_weights

from evalkit.audio import Audio, load, resample
from evalkit.codecs import Bitstream
from evalkit.errors import CodecError, ConfigError
from evalkit.lpcnet.speaker import SpeakerEncoder, group_of, log_mels, speaker_groups

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- speaker encoder and groups -----------------------------------------------------------------


def test_ge2e_loss_prefers_embeddings_that_separate_speakers():
    from evalkit.lpcnet.speaker_train import ge2e_loss

    rng = np.random.default_rng(0)
    centres = torch.nn.functional.normalize(torch.from_numpy(rng.standard_normal((4, 1, 16))), dim=-1)
    tight = torch.nn.functional.normalize(centres + 0.05 * torch.from_numpy(rng.standard_normal((4, 5, 16))), dim=-1)
    mixed = torch.nn.functional.normalize(torch.from_numpy(rng.standard_normal((4, 5, 16))), dim=-1)
    scale, offset = torch.tensor(10.0), torch.tensor(-5.0)
    assert ge2e_loss(tight, scale, offset) < 0.5 * ge2e_loss(mixed, scale, offset)


def test_speaker_groups_recover_well_separated_clusters():
    rng = np.random.default_rng(1)
    centres = np.eye(3, 8) * 3
    embeddings = {f"s{g}-{i}": centres[g] + 0.2 * rng.standard_normal(8) for g in range(3) for i in range(4)}
    centroids, membership = speaker_groups(embeddings, 3)
    for g in range(3):
        assert len({membership[f"s{g}-{i}"] for i in range(4)}) == 1
    assert len(set(membership.values())) == 3
    assert group_of(centres[2] / 3, centroids) == membership["s2-0"]
    with pytest.raises(ValueError):
        speaker_groups({"a": np.ones(8), "b": np.ones(8)}, 3)


def test_log_mels_ignore_gain_and_band_limiting_empties_the_top():
    x = glottal_vowel(150.0, 0.5) + 0.01 * np.random.default_rng(0).standard_normal(8000)
    assert np.allclose(log_mels(x), log_mels(4 * x), atol=1e-3)
    limited = log_mels(x, band_limited=True)
    assert limited.shape == (48, 40) and np.ptp(limited[:, -5:]) < 1e-3  # the top bands hold only the floor


def test_a_few_speaker_encoder_steps_lower_the_ge2e_loss(tmp_path):
    from evalkit.lpcnet.speaker_train import SegmentSampler, train_speaker_encoder

    class Clip:
        def __init__(self, f0, seed):
            self.x = glottal_vowel(f0, 2.0) + 0.01 * np.random.default_rng(seed).standard_normal(2 * RATE)

        def load(self):
            return Audio(self.x[None].astype(np.float32), RATE)

    speakers = {f"v{f0}": [Clip(f0 * (1 + 0.02 * i), i) for i in range(3)] for f0 in (90, 150, 230, 330)}
    sampler = SegmentSampler(speakers, per_speaker=3, seed=0)
    _, history = train_speaker_encoder(
        sampler, tmp_path, steps=40, speakers=4, utterances=3, lr=3e-3, checkpoint_every=10, log=lambda *a: None
    )
    assert history[-1] < 0.8 * history[0]
    assert (tmp_path / "speaker-checkpoint.pt").is_file()


def test_speaker_encoder_separates_two_demo_speakers_better_than_chance():
    """The shipped encoder on held-out demo speakers (unseen in training): Allison vs Carlo."""
    from evalkit.cards import load_cards
    from evalkit.lpcnet.weights import load_weights

    card = load_cards().get("lpcnet-1k6-personal")
    if card is None:
        pytest.skip("no personalised LPCNet card")
    encoder = SpeakerEncoder(load_weights(ROOT / "codecs" / card.params["personal"]).section("speaker."))
    demo = ROOT / "data" / "demo" / "audio"
    names = {
        "allison": [
            "asterisk-allison-en-vm-newuser",
            "asterisk-allison-en-demo-thanks",
            "asterisk-allison-en-priv-introsaved",
            "asterisk-allison-en-demo-nogo",
        ],
        "carlo": [
            "asterisk-carlo-it-vm-newuser",
            "asterisk-carlo-it-demo-thanks",
            "asterisk-carlo-it-priv-introsaved",
            "asterisk-carlo-it-demo-nogo",
        ],
    }
    labels, vectors = [], []
    for speaker, items in names.items():
        for item in items:
            labels.append(speaker)
            vectors.append(encoder.embed(resample(load(demo / f"{item}.wav"), RATE).samples[0]))
    sims = np.array(vectors) @ np.array(vectors).T
    same = np.array([[a == b for b in labels] for a in labels])
    off = ~np.eye(len(labels), dtype=bool)
    assert sims[same & off].mean() > sims[~same].mean()
    nearest = [labels[int(np.argmax(np.where(off[i], sims[i], -np.inf)))] for i in range(len(labels))]
    assert np.mean([n == label for n, label in zip(nearest, labels)]) > 3 / 7  # chance: 3 of the 7 others


# -- the lpcnet-personal stream --------------------------------------------------------------------


@pytest.fixture(scope="module")
def personal_weights(tmp_path_factory):
    return tiny_lpcnet_weights(tmp_path_factory.mktemp("personal"))


def _personal(weights, group=None):
    from evalkit.lpcnet.codec import PersonalLPCNetCodec

    generic, personal = weights
    return PersonalLPCNetCodec(str(generic), _sha(generic), str(personal), _sha(personal), group=group)


@pytest.fixture(scope="module")
def voice():
    return Audio((glottal_vowel(140.0, 0.8) * np.hanning(int(0.8 * RATE)))[None].astype(np.float32), RATE)


def test_group_index_travels_in_the_first_packet_and_counts_in_the_bitrate(personal_weights, voice):
    codec = _personal(personal_weights)
    stream = codec.encode_packets(voice)
    assert len(stream.packets[0]) == 9 and {len(p) for p in stream.packets[1:]} == {8}
    assert stream.packets[0][0] == codec.encoder.group(
        np.pad(voice.samples[0], (0, 640 * len(stream.packets) - voice.frames))
    )
    assert stream.payload_bytes == 8 * len(stream.packets) + 1
    assert codec.info.streaming is False and _personal(personal_weights, group=1).info.streaming is True


def test_a_card_elsewhere_finds_both_weights_files_beside_it(personal_weights, tmp_path):
    import shutil

    from evalkit.cards import load_cards

    generic, personal = personal_weights
    folder = tmp_path / "cards"
    (folder / "w").mkdir(parents=True)
    for path in (generic, personal):
        shutil.copy(path, folder / "w" / path.name)
    (folder / "my-personal.yaml").write_text(
        "name: my-personal\nbackend: lpcnet-personal\n"
        f"params: {{weights: w/{generic.name}, sha256: {_sha(generic)}, personal: w/{personal.name}, "
        f"personal_sha256: {_sha(personal)}, group: 1}}\n"
    )
    codec = load_cards(folder)["my-personal"].build()
    assert codec.groups == 2 and codec.forced_group == 1


def test_each_group_decodes_with_its_own_vocoder(personal_weights, voice):
    outputs = []
    for group in range(2):
        codec = _personal(personal_weights, group=group)
        stream = codec.encode_packets(voice)
        assert stream.packets[0][0] == group
        outputs.append(codec.decode_packets(stream).samples[0])
    assert not np.allclose(outputs[0], outputs[1])
    lost_first = Bitstream(stream.backend, stream.header, [None] + stream.packets[1:])
    assert np.all(np.isfinite(codec.decode_packets(lost_first).samples))  # the generic vocoder takes over


def test_personal_stream_defects_raise_codec_error(personal_weights, voice):
    codec = _personal(personal_weights, group=0)
    stream = codec.encode_packets(voice)
    for first in (bytes([7]) + stream.packets[0][1:], stream.packets[0][1:]):  # unknown group; no group byte
        with pytest.raises(CodecError):
            codec.decode(Bitstream(stream.backend, stream.header, [first] + stream.packets[1:]).to_bytes())
    with pytest.raises(ConfigError, match="group"):
        _personal(personal_weights, group=2)


# -- the reference (sample-rate) LPCNet ---------------------------------------------------------------


def test_compiled_sample_loop_equals_the_torch_reference():
    from evalkit.lpcnet.features import features
    from evalkit.lpcnet.samplerate import SampleRateConfig, SampleRateDecoder, SampleRateLPCNet, reference_decode

    torch.manual_seed(0)
    model = SampleRateLPCNet(SampleRateConfig(cond=16, embed=8, sample_embed=8, gru_a=16, gru_b=8)).double()
    feats = features(glottal_vowel(180.0, 0.05))
    uniforms = np.random.default_rng(1).random(len(feats) * 160)
    reference = reference_decode(model, feats, uniforms)
    arrays = {name: t.detach().numpy() for name, t in model.state_dict().items()}
    compiled = SampleRateDecoder(arrays, model.config, dtype=np.float64).decode(feats, uniforms)
    assert np.array_equal(compiled, reference)  # the same samples drawn, one by one


def test_teacher_forcing_targets_rebuild_the_signal_without_noise():
    from evalkit.lpcnet.features import features
    from evalkit.lpcnet.samplerate import teacher_signals, ulaw_to_linear

    x = glottal_vowel(120.0, 0.2)
    _, lpc, _ = features(x, with_lpc=True)
    sig, pred, exc, target = teacher_signals(x, lpc, np.random.default_rng(0), noise=0.0)
    rebuilt = ulaw_to_linear(pred[:-1]) + ulaw_to_linear(target[:-1])  # p[t] + e[t] = s[t] ...
    assert np.corrcoef(rebuilt, ulaw_to_linear(sig[1:]))[0, 1] > 0.95  # ... which is the next step's s[t-1]
    assert np.array_equal(exc[1:], target[:-1])  # without noise, e[t-1] is the previous target


def test_continued_fine_tuning_changes_one_group_only(tmp_path):
    """scripts/train_lpcnet_personal.py: `extract` gives a group's vocoder and the codec's codebooks
    to fine-tune from; `replace` swaps that group's vocoder and leaves every other array as it was."""
    import sys

    from evalkit.lpcnet.weights import load_weights, save_weights

    sys.path.insert(0, str(ROOT / "scripts"))
    import train_lpcnet_personal as script

    generic, personal = tiny_lpcnet_weights(tmp_path, groups=3)
    script.main(["extract", "--group", "1", "--bundle", str(personal), "--small", str(generic), "--out", str(tmp_path)])
    start, bundle = load_weights(tmp_path / "personal-group1.npz"), load_weights(personal)
    assert start.section("vocoder.").keys() == bundle.section("group1.vocoder.").keys()
    assert all(np.array_equal(v, bundle.arrays[f"group1.vocoder.{k}"]) for k, v in start.section("vocoder.").items())
    codebooks = load_weights(tmp_path / "quantizer.npz").section("quantizer.")
    assert codebooks and all(
        np.array_equal(v, load_weights(generic).arrays[f"quantizer.{k}"]) for k, v in codebooks.items()
    )

    tuned = {k: (v + 1).astype(v.dtype) for k, v in start.section("vocoder.").items()}
    model = save_weights(
        tmp_path / "model.npz", config=start.config, extra_arrays={f"vocoder.{k}": v for k, v in tuned.items()}
    )
    out = tmp_path / "personal-v2.npz"
    script.main(["replace", "--group", "1", "--model", str(model), "--bundle", str(personal), "--out", str(out)])
    new = load_weights(out)
    assert new.arrays.keys() == bundle.arrays.keys()
    for key, value in new.arrays.items():
        expected = tuned[key.removeprefix("group1.vocoder.")] if key.startswith("group1.") else bundle.arrays[key]
        assert value.dtype == expected.dtype and np.array_equal(value, expected), key
    assert new.config["groups"] == 3

    wrong = save_weights(
        tmp_path / "wrong.npz", config={"vocoder_config": {"gru1": 1}}, extra_arrays={"vocoder.x": np.ones(2)}
    )
    with pytest.raises(SystemExit, match="does not fit group 1"):
        script.main(["replace", "--group", "1", "--model", str(wrong), "--bundle", str(personal), "--out", str(out)])
