"""Decoded files made elsewhere as conditions: matching, rows, identity by content, bitstreams, `evalkit score`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import evalkit
from evalkit.audio import Audio, load, resample, save
from evalkit.cli import main
from evalkit.conditions import DecodedCondition, match_files, render, suggested_pattern
from evalkit.datasets import load_dataset
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.errors import AudioError, ConfigError
from evalkit.experiment import load_experiment
from evalkit.report.data import load_run
from evalkit.report.drilldown import item_view
from evalkit.report.leaderboard import codec_family, codec_table
from evalkit.store import connect, roundtrips_frame, run_warnings

ITEMS = load_dataset(DEMO_MANIFEST)[:3]
IDS = [item.id for item in ITEMS]


def touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")


# -- matching ------------------------------------------------------------------------------


def test_folder_matches_by_relative_path_then_stem_and_reports_the_rest(tmp_path):
    touch(tmp_path, "a.wav", "b.flac", "b.wav", "sub/c.wav", "notes.txt", "zzz.wav", "e.v2.dec.wav")
    m = match_files(".", tmp_path, ["a", "b", "spk/c", "d", "e"])
    assert m.files == {"a": tmp_path / "a.wav", "spk/c": tmp_path / "sub/c.wav", "e": tmp_path / "e.v2.dec.wav"}
    assert m.missing == ("d",) and set(m.ambiguous["b"]) == {"b.flac", "b.wav"}
    assert m.extra == ("zzz.wav",)  # not notes.txt: only audio files are candidates


def test_one_file_claimed_by_two_items_is_ambiguous_for_both(tmp_path):
    touch(tmp_path, "utt1.wav")
    m = match_files(".", tmp_path, ["spk1/utt1", "spk2/utt1"])
    assert not m.files and set(m.ambiguous) == {"spk1/utt1", "spk2/utt1"}
    assert "also matches spk2/utt1" in m.ambiguous["spk1/utt1"][0]


def test_pattern_with_other_names(tmp_path):
    touch(tmp_path, "out/a_dec.wav", "out/b_dec.wav", "out/x_dec.wav", "out/a.wav")
    m = match_files("out/{id}_dec.wav", tmp_path, ["a", "b", "c"])
    assert m.files == {"a": tmp_path / "out/a_dec.wav", "b": tmp_path / "out/b_dec.wav"}
    assert m.missing == ("c",) and m.extra == ("x_dec.wav",)
    assert match_files("out/{item}_dec.wav", tmp_path, ["a"]).files  # MUSHRA's spelling works too


def test_a_pattern_without_an_audio_suffix_takes_any(tmp_path):
    touch(tmp_path, "out/a_dec.wav", "out/b_dec.flac", "out/c_dec.wav", "out/c_dec.flac", "out/x_dec.ogg")
    m = match_files("out/{id}_dec", tmp_path, ["a", "b", "c", "d"])
    assert m.files == {"a": tmp_path / "out/a_dec.wav", "b": tmp_path / "out/b_dec.flac"}
    assert set(m.ambiguous["c"]) == {"c_dec.wav", "c_dec.flac"} and m.missing == ("d",)
    assert m.extra == ("x_dec.ogg",)
    bits = match_files("out/{id}_dec", tmp_path, ["a"], suffixes=None)  # bitstreams: the name as given
    assert bits.missing == ("a",)


def test_names_with_text_around_the_ids_get_a_pattern_to_give(tmp_path):
    touch(tmp_path, "out/spk1-a_6k.wav", "out/spk1-b_6k.wav", "out/spk1-ab_6k.flac", "out/readme.wav")
    m = match_files("out", tmp_path, ["a", "b", "ab", "z"])
    assert not m.files and suggested_pattern("out", m) == "out/spk1-{id}_6k"  # two suffixes: none written
    touch(tmp_path, "one/a.v2.wav", "one/b_v2.wav")  # a name before the first dot still matches "a"
    only = match_files("one", tmp_path, ["a", "b"])
    assert only.missing == ("b",) and suggested_pattern("one", only) == "one/{id}_v2.wav"
    touch(tmp_path, "few/x_a.wav", "few/q.wav")  # one of three items explained: no suggestion
    assert suggested_pattern("few", match_files("few", tmp_path, ["a", "b", "c"])) is None
    assert suggested_pattern("out/{id}.wav", match_files("out/{id}.wav", tmp_path, ["a"])) is None


def test_manifest_and_mapping(tmp_path):
    touch(tmp_path, "one.wav", "two.wav")
    lines = [
        {"id": "a", "deg": "one.wav"},
        {"id": "b", "deg": "two.wav"},
        {"id": "b", "deg": "one.wav"},
        {"id": "z", "deg": "two.wav"},
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    m = match_files("pairs.jsonl", tmp_path, ["a", "b", "c"])
    assert m.files == {"a": tmp_path / "one.wav"} and m.missing == ("c",) and "b" in m.ambiguous
    assert m.extra == ("id 'z'",)
    (tmp_path / "bad.jsonl").write_text('{"id": "a"}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:1: .*'deg'"):
        match_files("bad.jsonl", tmp_path, ["a"])
    assert match_files({"a": "two.wav"}, tmp_path, ["a"]).files == {"a": tmp_path / "two.wav"}
    with pytest.raises(ConfigError, match="no such folder"):
        match_files("nowhere", tmp_path, ["a"])


# -- experiments ---------------------------------------------------------------------------


def make_decoded(folder: Path, lag: int = 144, gain: float = 0.7, skip: int | None = None) -> Path:
    """Each demo item as a codec elsewhere might leave it: late by `lag`, quieter, longer, at 24 kHz."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, item in enumerate(ITEMS):
        if index == skip:
            continue
        ref = item.load()
        x = np.concatenate([np.zeros(lag), gain * ref.samples[0], np.zeros(480)])
        save(resample(Audio(x, ref.sample_rate), 24000), folder / f"{item.id}.dec.wav", "FLOAT")
    return folder


def experiment(tmp_path: Path, codecs: list, **overrides) -> Path:
    config = {
        "name": "t",
        "dataset": str(DEMO_MANIFEST),
        "limit": 3,
        "workers": 0,
        "codecs": codecs,
        "metrics": ["si_sdr", "stoi"],
        "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "cache": str(tmp_path / "cache"),
        **overrides,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_decoded_files_score_like_a_codec_with_lag_stored_and_missing_items_failed(tmp_path):
    make_decoded(tmp_path / "mine", skip=2)
    path = experiment(tmp_path, ["reference", {"name": "mine", "decoded": "mine/{id}.dec.wav", "bitrate_kbps": 6}])
    frame = evalkit.run(path)
    assert not frame.duplicated(["item_id", "codec", "metric"]).any()
    mine = frame[frame.codec == "mine"]
    assert set(mine.metric) == {"si_sdr", "stoi", "bitrate_kbps"}
    ok = mine[mine.item_id != IDS[2]]
    assert (ok.status == "ok").all() and (ok.lag == 144).all() and (ok.length_change == 144 + 480).all()
    assert (ok[ok.metric == "si_sdr"].value > 30).all()  # gain and lag undone: only resampling error is left
    assert (ok[ok.metric == "bitrate_kbps"].value == 6).all()
    missing = mine[mine.item_id == IDS[2]]
    assert (missing.status == "failed").all() and missing.reason.str.contains("no file for item").all()
    warnings = run_warnings(connect(load_experiment(path).database), "t")
    assert any("1 of 3 items have no decoded file" in w["text"] and w["items"] == [IDS[2]] for w in warnings.values())
    trips = roundtrips_frame(connect(load_experiment(path).database), "t").set_index(["codec", "item_id"])
    assert trips.loc[("mine", IDS[0]), "lag"] == 144 and trips.loc[("reference", IDS[0]), "lag"] == 0


def test_changed_files_are_rescored_and_unchanged_ones_are_not(tmp_path):
    folder = make_decoded(tmp_path / "mine")
    path = experiment(tmp_path, [{"name": "mine", "decoded": "mine", "bitrate_kbps": 6}])
    before = evalkit.run(path).set_index(["item_id", "metric"])
    assert (before.status == "ok").all()
    again = evalkit.run(path).set_index(["item_id", "metric"])
    assert again.created_at.equals(before.created_at)
    changed = folder / f"{IDS[1]}.dec.wav"
    audio = load(changed)
    save(
        audio.with_samples(audio.samples + 0.01 * np.random.default_rng(0).standard_normal(audio.samples.shape)),
        changed,
        "FLOAT",
    )
    after = evalkit.run(path).set_index(["item_id", "metric"])
    moved = after.created_at != before.created_at
    assert set(after[moved].index.get_level_values("item_id")) == {IDS[1]}
    assert after.loc[(IDS[1], "si_sdr"), "value"] < before.loc[(IDS[1], "si_sdr"), "value"]


def test_bitstream_sizes_give_the_bitrate(tmp_path):
    make_decoded(tmp_path / "mine")
    for item in ITEMS:
        (tmp_path / "bits").mkdir(exist_ok=True)
        (tmp_path / "bits" / f"{item.id}.bin").write_bytes(bytes(1000))
    path = experiment(tmp_path, [{"name": "mine", "decoded": "mine", "bitstreams": "bits"}], metrics=["si_sdr"])
    frame = evalkit.run(path)
    kbps = frame[frame.metric == "bitrate_kbps"].set_index("item_id").value
    for item in ITEMS:
        assert kbps[item.id] == pytest.approx(8 * 1000 / item.load().duration / 1000)


def test_evalkit_bitstreams_decoded_by_a_card_score_as_the_card(tmp_path):
    (tmp_path / "bits").mkdir()
    for item in ITEMS:
        assert (
            main(["encode", str(item.path), "--codec", "g726-32k", "-o", str(tmp_path / "bits" / f"{item.id}.evk")])
            == 0
        )
    path = experiment(tmp_path, ["g726-32k", {"name": "mine", "bitstreams": "bits", "card": "g726-32k"}])
    frame = evalkit.run(path)
    values = frame.pivot_table(index=["item_id", "metric"], columns="codec", values="value")
    scores = values.loc[(slice(None), ["si_sdr", "stoi"]), :]
    np.testing.assert_allclose(scores["mine"], scores["g726-32k"], rtol=1e-6)
    bitrate = values.xs("bitrate_kbps", level="metric")
    np.testing.assert_allclose(bitrate["mine"], bitrate["g726-32k"], rtol=0.02)
    run = load_run(connect(load_experiment(path).database), "t")
    assert codec_family(run, "mine") == codec_family(run, "g726-32k") == "g726"  # the card's family


def test_the_report_shows_files_made_elsewhere_as_decoded_files(tmp_path):
    make_decoded(tmp_path / "mine")
    path = experiment(tmp_path, ["reference", {"name": "mine", "decoded": "mine/{id}.dec.wav"}])
    evalkit.run(path)
    run = load_run(connect(load_experiment(path).database), "t")
    families = codec_table(run).set_index("codec")["family"].to_dict()
    assert families == {"mine": "decoded files", "reference": "reference"}
    view = item_view(connect(load_experiment(path).database), run, IDS[0], "mine")  # the user's file, not cached
    assert view.decoded_path == tmp_path / "mine" / f"{IDS[0]}.dec.wav" and not view.notes


@pytest.mark.parametrize(
    "entry, match",
    [
        ({"decoded": "x"}, "'name' is required"),
        ({"name": "opus-12k", "decoded": "x"}, "name of a codec card"),
        ({"name": "m"}, "give 'decoded'"),
        ({"name": "m", "decoded": "x", "bitstreams": "y", "bitrate_kbps": 6}, "not both"),
        ({"name": "m", "decoded": "x", "card": "opus-12k"}, "nothing to decode"),
        ({"name": "m", "bitstreams": "y", "card": "nope"}, "unknown codec 'nope'"),
        ({"name": "m", "bitstreams": "y"}, "need a 'card'"),
        ({"name": "m", "decoded": "x", "bitrate_kbps": -1}, r"codecs\[0\].bitrate_kbps: must be above 0"),
        ({"name": "m@1", "decoded": "x"}, "without '@'"),
        ({"name": "m", "decoded": "x", "files": "y"}, "same key"),
        ({"name": "m", "decoded": ["x"]}, "a folder, a pattern"),
        ({"name": "m", "decoded": "x", "bitrate": 6}, r"codecs\[0\].bitrate: unknown key"),
    ],
)
def test_bad_condition_entries_are_named(tmp_path, entry, match):
    with pytest.raises(ConfigError, match=match):
        load_experiment(experiment(tmp_path, [entry]))


def test_files_is_mushras_name_for_decoded(tmp_path):
    make_decoded(tmp_path / "mine")
    exp = load_experiment(experiment(tmp_path, [{"name": "mine", "files": "mine"}]))
    assert exp.codecs[0].decoded == "mine"


def test_a_pairs_manifest_is_both_the_dataset_and_the_condition(tmp_path):
    make_decoded(tmp_path / "mine")
    lines = [{"id": f"u{i}", "ref": str(item.path), "deg": f"mine/{item.id}.dec.wav"} for i, item in enumerate(ITEMS)]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    frame = evalkit.run(
        experiment(
            tmp_path,
            [{"name": "mine", "decoded": "pairs.jsonl"}],
            dataset="pairs.jsonl",
            metrics=["si_sdr"],
            allow_outside=True,
        )
    )  # the references are elsewhere
    scored = frame[frame.metric == "si_sdr"]
    assert sorted(scored.item_id) == ["u0", "u1", "u2"] and (scored.lag == 144).all()
    skipped = frame[frame.metric == "bitrate_kbps"]
    assert (skipped.status == "skipped").all() and skipped.reason.str.contains("bitrate_kbps").all()


# -- evalkit score -------------------------------------------------------------------------


def reference_folder(tmp_path: Path) -> Path:
    """The items' reference files in one folder, as `evalkit score --ref` takes them."""
    refs = tmp_path / "refs"
    refs.mkdir()
    for item in ITEMS:
        shutil.copyfile(item.path, refs / f"{item.id}.wav")
    return refs


def test_score_folders_prints_a_table_with_the_lag(tmp_path, capsys):
    make_decoded(tmp_path / "mine")
    refs = reference_folder(tmp_path)
    code = main(
        [
            "score",
            "--ref",
            str(refs),
            "--deg",
            str(tmp_path / "mine" / "{id}.dec.wav"),
            "--metrics",
            "si_sdr",
            "--workers",
            "0",
            "-o",
            str(tmp_path / "rows.csv"),
        ]
    )
    out = capsys.readouterr()
    assert code == 0
    assert all(item.id in out.out for item in ITEMS) and "+144" in out.out and "si_sdr" in out.out
    assert "alignment: dec: lag +144 samples (+9.00 ms)" in out.err
    assert (tmp_path / "rows.csv").is_file()


def test_score_prints_the_bitrate_it_was_given(tmp_path, capsys):
    make_decoded(tmp_path / "mine")
    refs = reference_folder(tmp_path)
    deg = str(tmp_path / "mine" / "{id}.dec.wav")
    args = ["score", "--ref", str(refs), "--deg", deg, "--metrics", "si_sdr", "--workers", "0"]
    assert main([*args, "--bitrate-kbps", "6"]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("dec ") and " bitrate_kbps " in line]
    assert "3/3" in line and " 6.000 " in line, line
    assert "bitrate_kbps a plain mean over items" in out  # not stored: no item durations to weight by
    assert main(args) == 0
    assert "bitrate_kbps" not in capsys.readouterr().out  # none given: a folder of files says nothing of it


def test_score_with_no_file_matched_prints_the_failures_and_a_pattern(tmp_path, capsys):
    make_decoded(tmp_path / "mine")
    for path in (tmp_path / "mine").glob("*.dec.wav"):
        path.rename(path.with_name(path.name.replace(".dec.wav", "_decoded.wav")))
    refs = reference_folder(tmp_path)
    args = ["score", "--ref", str(refs), "--metrics", "si_sdr", "--workers", "0"]
    assert main([*args, "--deg", str(tmp_path / "mine")]) == 1  # every row failed before alignment: no traceback
    out = capsys.readouterr()
    assert all(item.id in out.out for item in ITEMS) and "failed" in out.out
    pattern = str(tmp_path / "mine" / "{id}_decoded.wav")
    assert f"named like {pattern!r}" in out.err
    assert main([*args, "--deg", pattern]) == 0


@pytest.mark.parametrize("stored", [False, True])
def test_score_clips_the_interval_to_the_metric_range(tmp_path, capsys, stored):
    refs, out = tmp_path / "refs", tmp_path / "out"
    refs.mkdir(), out.mkdir()
    rng = np.random.default_rng(0)
    for index, item in enumerate(ITEMS):  # two exact copies and one at 0 dB SNR: STOI 1, 1 and well below
        ref = item.load()
        shutil.copyfile(item.path, refs / f"{item.id}.wav")
        noise = rng.standard_normal(ref.frames) * ref.samples[0].std() if index == 2 else 0
        save(Audio(ref.samples[0] + noise, ref.sample_rate), out / f"{item.id}.wav", "FLOAT")
    run = ["--run", "r", "--database", f"sqlite:///{tmp_path / 'db.sqlite'}"] if stored else []
    assert main(["score", "--ref", str(refs), "--deg", str(out), "--metrics", "stoi", "--workers", "0", *run]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if " stoi " in f" {line} " and "[" in line]
    assert line.rstrip().endswith("1.000]"), line


def test_a_decoded_file_far_longer_than_its_item_is_refused_unread(tmp_path, monkeypatch):
    item = ITEMS[0]
    long = tmp_path / "out" / f"{item.id}.wav"
    long.parent.mkdir()
    ref = item.load()
    save(Audio(np.tile(ref.samples[0], 12), ref.sample_rate), long)  # another, longer file under the item's name
    read = []
    monkeypatch.setattr("soundfile.SoundFile.read", lambda *a, **k: read.append(1))
    condition = DecodedCondition("mine", "out", base=tmp_path)
    files, _ = condition.match([item], lambda path: "x")
    with pytest.raises(AudioError, match=r"s long, more than the .* s expected; is it the right file\?"):
        render(condition, files[item.id], ref, downmix=False)
    assert not read


def test_score_one_pair_and_store_it_as_a_run(tmp_path, capsys):
    make_decoded(tmp_path / "mine")
    item = ITEMS[0]
    deg = tmp_path / "mine" / f"{item.id}.dec.wav"
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    args = ["score", "--ref", str(item.path), "--deg", str(deg), "--metrics", "si_sdr", "--workers", "0"]
    assert main(args + ["--run", "once", "--database", database, "--name", "mine"]) == 0
    rows = evalkit.store.results_frame(connect(database), "once")
    assert set(rows.codec) == {"mine"} and rows[rows.metric == "si_sdr"].lag.tolist() == [144]
    assert main(["score", "--ref", str(item.path), "--workers", "0"]) == 1  # no --deg
    assert "give --ref and --deg" in capsys.readouterr().err


# -- run exit codes ------------------------------------------------------------------------


def test_a_run_with_no_successful_row_exits_non_zero(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b"):
        (data / f"{name}.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    assert main(["run", str(experiment(tmp_path, ["reference"], dataset=str(data), limit=None))]) == 1
    err = capsys.readouterr().err
    assert "FAILED: 10 of 10 rows" in err and "cannot load item" in err and "no row of run 't' succeeded" in err


def test_more_than_a_tenth_failed_is_loud_but_not_fatal(tmp_path, capsys):
    make_decoded(tmp_path / "mine", skip=1)
    path = experiment(tmp_path, [{"name": "mine", "decoded": "mine", "bitrate_kbps": 6}])
    assert main(["run", str(path)]) == 0
    err = capsys.readouterr().err
    assert "FAILED: 3 of 9 rows" in err and "no file for item <item>" in err and "[mine; 1 item]" in err
    (tmp_path / "clean").mkdir()
    assert main(["run", str(experiment(tmp_path / "clean", ["reference"]))]) == 0
    assert "FAILED" not in capsys.readouterr().err


# -- files made by another tool ------------------------------------------------------------


def _ffmpeg(*args: str) -> None:
    import subprocess

    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("ffmpeg") is None, reason="needs the ffmpeg command (Debian ffmpeg)")
def test_ffmpeg_made_outputs_score_like_the_matching_cards(tmp_path):
    """Opus 8 kbit/s and MP3 32 kbit/s made by the ffmpeg command (its own libopus and LAME), 25 ms
    late, padded, named otherwise and at other rates, score like evalkit's own cards."""
    (tmp_path / "dec").mkdir()
    for item in ITEMS:
        opus, mp3 = tmp_path / "x.opus", tmp_path / "x.mp3"
        _ffmpeg(
            "-i",
            str(item.path),
            "-af",
            "adelay=25ms,apad=pad_dur=0.1",
            "-c:a",
            "libopus",
            "-b:a",
            "8k",
            "-application",
            "voip",
            str(opus),
        )
        _ffmpeg("-i", str(opus), "-ar", "48000", str(tmp_path / "dec" / f"{item.id}.opus8k.wav"))
        _ffmpeg(
            "-i", str(item.path), "-af", "adelay=25ms", "-c:a", "libmp3lame", "-b:a", "32k", "-ar", "16000", str(mp3)
        )
        _ffmpeg("-i", str(mp3), "-ar", "44100", str(tmp_path / "dec" / f"mp3_{item.id}.flac"))
    codecs = [
        {"card": "opus-16k-wb", "sweep": {"bitrate": [8000]}},
        "mp3-32k-16khz",
        {"name": "ff-opus", "decoded": "dec/{id}.opus8k.wav"},
        {"name": "ff-mp3", "decoded": "dec/mp3_{id}.flac"},
    ]
    frame = evalkit.run(experiment(tmp_path, codecs, metrics=["pesq_wb", "stoi"]))
    scored = frame[frame.metric.isin(["pesq_wb", "stoi"])]
    assert (scored.status == "ok").all()
    values = scored.pivot_table(index=["item_id", "metric"], columns="codec", values="value")
    for ours, theirs in (("opus-16k-wb@bitrate=8000", "ff-opus"), ("mp3-32k-16khz", "ff-mp3")):
        pesq, stoi = values.xs("pesq_wb", level="metric"), values.xs("stoi", level="metric")
        assert abs(pesq[ours].mean() - pesq[theirs].mean()) < 0.2, (ours, pesq)
        assert (abs(stoi[ours] - stoi[theirs]) < 0.015).all(), (ours, stoi)
    lags = scored.drop_duplicates(["codec", "item_id"]).set_index("codec").lag
    assert (lags["ff-mp3"] == 400).all() and (abs(lags["ff-opus"] - 400) <= 2).all()  # 25 ms at 16 kHz
