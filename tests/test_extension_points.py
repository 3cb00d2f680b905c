"""Every extension point goes through one registry whose entries pyproject.toml declares as entry points."""

from __future__ import annotations

import ast
import tomllib
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from evalkit.errors import ConfigError
from evalkit.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
DECLARED = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
GROUPS = {
    "evalkit.codecs": "evalkit.codecs:BACKENDS",
    "evalkit.metrics": "evalkit.metrics:METRICS",
    "evalkit.phone_recognizers": "evalkit.content:RECOGNIZERS",
    "evalkit.recipes": "evalkit.neural.recipe_base:RECIPES",
    "evalkit.test_types": "evalkit.listening.types:TEST_TYPES",
}


def _registry(where: str) -> Registry:
    module, _, name = where.partition(":")
    if module.startswith("evalkit.neural"):
        pytest.importorskip("torch")
    return getattr(import_module(module), name)


def test_the_installed_metadata_declares_what_pyproject_declares():
    """A stale install (pyproject.toml changed since `pip install -e .`) would miss extensions."""
    for group, declared in DECLARED.items():
        installed = {ep.name: ep.value for ep in entry_points(group=group) if ep.value.startswith("evalkit.")}
        assert installed == declared, f"reinstall evalkit (pip install -e .): {group} differs"


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_each_registry_holds_its_declared_entries(group):
    registry = _registry(GROUPS[group])
    assert registry.group == group and registry.has_builtins
    for name, value in DECLARED[group].items():
        module, _, attribute = value.partition(":")
        if attribute:  # an object, registered under the entry's name
            assert registry.get(name) is getattr(import_module(module), attribute)
        else:  # a module of registrations: it registered something
            assert import_module(module).__name__ == module
    assert registry.names()


def test_package_init_files_import_no_extension_module():
    """The lists live in pyproject.toml only: no package __init__ imports a declared module."""
    declared = {value.partition(":")[0] for group in DECLARED.values() for value in group.values()}
    for init in (ROOT / "evalkit").rglob("__init__.py"):
        package = ".".join(init.relative_to(ROOT).parent.parts)
        tree = ast.parse(init.read_text())
        imported = {
            f"{package}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None
            for alias in node.names
        }
        imported |= {
            f"{package}.{node.module}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        }
        assert not imported & declared, f"{init.relative_to(ROOT)} imports {sorted(imported & declared)}"


def test_a_broken_entry_is_named_in_one_line(monkeypatch):
    from importlib.metadata import EntryPoint

    from evalkit import registry as module

    broken = EntryPoint("ghost", "evalkit.no_such_module", "evalkit.tests")
    monkeypatch.setattr(module, "group_entries", lambda group: [broken])
    with pytest.raises(ConfigError, match=r"^thing entry point 'ghost' \(evalkit.no_such_module\) cannot be loaded"):
        Registry("thing", "evalkit.tests").names()
    with pytest.raises(ConfigError, match="reinstall evalkit"):
        monkeypatch.setattr(module, "group_entries", lambda group: [])
        Registry("thing", "evalkit.tests", has_builtins=True).names()


def test_a_recipe_declares_the_weights_of_its_own_losses():
    pytest.importorskip("torch")
    from evalkit.neural.train import TrainConfig

    base = {"data": {"train": "t.jsonl"}}
    config = TrainConfig.load({**base, "recipe": "lpcnet-samplerate", "losses": {"ce": 0.5, "stft": 0.0}})
    assert config.losses["ce"] == 0.5 and config.losses["mel"] == 1.0
    assert TrainConfig.load({**base, "recipe": "ladiff"}).losses["diff"] == 1.0
    with pytest.raises(ConfigError, match="ce"):
        TrainConfig.load({**base, "recipe": "rvq", "losses": {"ce": 0.5}})


PLUGIN = """
import numpy as np
from evalkit.codecs import Codec, CodecInfo, register_backend
from evalkit.metrics import Metric, MetricSpec


@register_backend("plug-pcm")
class PlugPcm(Codec):
    @property
    def info(self):
        return CodecInfo(name=self.backend, version="1", family="plug", sample_rate=8000, frame_samples=160,
                         lookahead_samples=0, nominal_bitrate=128000.0)

    def _encode(self, samples):
        return {}, [samples[0].astype(np.float32).tobytes()]

    def _decode(self, header, packets):
        return np.frombuffer(packets[0], np.float32)


PLUG_METRIC = Metric(MetricSpec(name="plug_peak", version="1", higher_is_better=False, needs_reference=False,
                                sample_rates=None, min_duration=0.0, package=None, outputs=("plug_peak",),
                                description="peak"),
                     lambda ref, deg, rate: float(abs(deg).max()))
"""


def test_a_plugin_package_adds_a_backend_module_and_a_metric_object(tmp_path):
    """An installed package's entry points reach the registries beside evalkit's own, in a fresh process."""
    import subprocess
    import sys

    (tmp_path / "plugdemo.py").write_text(PLUGIN)
    info = tmp_path / "plugdemo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugdemo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[evalkit.codecs]\nplugdemo = plugdemo\n\n[evalkit.metrics]\nplug_peak = plugdemo:PLUG_METRIC\n"
    )
    code = (
        "from evalkit.codecs import BACKENDS; from evalkit.metrics import METRICS; "
        "print(BACKENDS.get('plug-pcm').backend, 'opus' in BACKENDS, METRICS.get('plug_peak').spec.name, "
        "'si_sdr' in METRICS, 'plugdemo' in BACKENDS)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    # the module entry registers what the module registers, not the module itself
    assert done.stdout.split() == ["plug-pcm", "True", "plug_peak", "True", "False"], done.stderr[-2000:]


def test_every_module_that_registers_is_declared():
    """A backend or metric module missing from pyproject.toml would never be imported."""
    declared = {value for group in ("evalkit.codecs", "evalkit.metrics") for value in DECLARED[group].values()}
    for path in (ROOT / "evalkit").rglob("*.py"):
        text = path.read_text()
        if "@register_backend(" in text or "\n@metric(" in text:
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            assert module in declared, f"{module} registers extensions but pyproject.toml does not declare it"


def _plugin_registry(monkeypatch, target, name="plug"):
    """A registry whose only entry point is `name`, pointing at `target` (held by this module)."""
    from importlib.metadata import EntryPoint

    from evalkit import registry as module

    monkeypatch.setattr(module, "group_entries", lambda group: [EntryPoint(name, f"{__name__}:_TARGET", "evalkit.t")])
    monkeypatch.setitem(globals(), "_TARGET", target)
    return Registry("metric", "evalkit.t", accepts=lambda t: isinstance(t, int), expected="an int")


def test_an_entry_pointing_at_the_wrong_kind_of_object_is_named(monkeypatch):
    registry = _plugin_registry(monkeypatch, lambda ref, deg, rate: 1.0)
    with pytest.raises(ConfigError, match=r"^metric entry point 'plug' \(.*\) is a function, not an int$"):
        registry.names()


def test_a_failed_plugin_load_fails_the_same_way_when_asked_again(monkeypatch):
    registry = _plugin_registry(monkeypatch, "not an int")
    for _ in range(2):  # a second look in the same process must not see half a registry
        with pytest.raises(ConfigError, match="is a str"):
            registry.get("plug")


def test_a_plugin_entry_clashing_with_a_registered_name_is_named(monkeypatch):
    registry = _plugin_registry(monkeypatch, 7, name="taken")
    registry.add("taken", 1)
    with pytest.raises(ConfigError, match=r"entry point 'taken' \(.*\) is named like another metric"):
        registry.names()


def test_the_real_registries_refuse_a_plain_function():
    from evalkit.codecs import BACKENDS
    from evalkit.metrics import METRICS

    assert not METRICS.accepts(lambda ref, deg, rate: 1.0) and METRICS.accepts(METRICS.get("si_sdr"))
    assert not BACKENDS.accepts(METRICS.get("si_sdr")) and BACKENDS.accepts(BACKENDS.get("identity"))
