"""Files that reach evalkit from other people: codec cards, weight files and bitstreams it refuses
with one line naming the file, without a traceback, code execution or an allocation the file steers."""

from __future__ import annotations

import pytest

from evalkit.cards import load_cards
from evalkit.errors import ConfigError


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
