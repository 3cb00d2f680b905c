"""The shared entropy-coding layer: exact round trips, length against the model's entropy, bad data."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("constriction")

from evalkit.codecs.entropy import RangeReader, RangeWriter, SymbolModel, empirical_entropy_bits  # noqa: E402
from evalkit.errors import CodecError  # noqa: E402


def _model(size: int, seed: int, concentration: float = 0.3) -> SymbolModel:
    rng = np.random.default_rng(seed)
    return SymbolModel(np.round(rng.dirichlet(np.full(size, concentration)) * 100000).astype(np.int64), f"m{size}")


@pytest.mark.parametrize("size", [2, 16, 512, 1024])
def test_long_stream_round_trips_within_one_percent_of_the_model_entropy(size):
    model = _model(size, size)
    symbols = np.random.default_rng(1).choice(size, 50000, p=model.probabilities)
    writer = RangeWriter()
    writer.write_all(symbols, [model] * len(symbols))
    data = writer.to_bytes()
    assert np.array_equal(RangeReader(data).read_run(model, len(symbols)), symbols)
    bits = 8 * len(data)
    assert bits == pytest.approx(writer.model_bits, rel=0.01)  # the information content of this stream
    assert bits == pytest.approx(len(symbols) * model.entropy(), rel=0.01)  # the model's entropy


def test_mixed_models_decode_in_order_with_data_dependent_choices():
    flags, small, large = _model(2, 0, 1.0), _model(16, 1), _model(1024, 2)
    rng = np.random.default_rng(3)
    writer, expected = RangeWriter(), []
    for _ in range(3000):
        flag = int(rng.random() < 0.3)
        value = int(rng.integers(0, 1024 if flag else 16))
        writer.write(flag, flags)
        writer.write(value, large if flag else small)
        expected.append((flag, value))
    reader = RangeReader(writer.to_bytes())
    decoded = []
    for _ in expected:
        flag = reader.read(flags)
        decoded.append((flag, reader.read(large if flag else small)))
    assert decoded == expected


def test_short_packets_round_trip_and_cost_little_more_than_their_information():
    model = _model(64, 4)
    rng = np.random.default_rng(5)
    overhead = []
    for length in range(0, 40):
        symbols = rng.choice(64, length, p=model.probabilities)
        writer = RangeWriter()
        writer.write_all(symbols, [model] * length)
        data = writer.to_bytes()
        assert list(RangeReader(data).read_many([model] * length)) == list(symbols)
        overhead.append(8 * len(data) - writer.model_bits)
    assert np.mean(overhead) < 8  # the 32-bit flush words trimmed to what the decoder needs


def test_unseen_symbols_stay_codable_and_bad_symbols_are_refused():
    model = SymbolModel(np.array([1000, 0, 5]), "sparse")
    writer = RangeWriter()
    writer.write_all([1, 1, 0, 2], [model] * 4)
    assert list(RangeReader(writer.to_bytes()).read_many([model] * 4)) == [1, 1, 0, 2]
    with pytest.raises(CodecError, match="outside"):
        writer.write(3, model)
    with pytest.raises(ValueError):
        SymbolModel(np.array([1.5, 2.0]))
    with pytest.raises(ValueError):
        SymbolModel(np.array([-1, 2]))


def test_garbage_either_decodes_to_valid_symbols_or_raises_codec_error():
    model = _model(300, 6)
    rng = np.random.default_rng(7)
    for _ in range(200):
        data = rng.integers(0, 256, int(rng.integers(0, 24)), dtype=np.uint8).tobytes()
        try:
            values = RangeReader(data).read_many([model] * 20)
        except CodecError:
            continue
        assert all(0 <= v < 300 for v in values)


def test_empirical_entropy():
    assert empirical_entropy_bits([]) == 0.0
    assert empirical_entropy_bits([3, 3, 3]) == 0.0
    assert empirical_entropy_bits([0, 1, 0, 1]) == pytest.approx(4.0)
