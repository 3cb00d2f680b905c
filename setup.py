"""Building a wheel copies the data folders evalkit reads at run time into the package (evalkit/_data)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("codecs", "tests_mushra", "app", "data/demo", "experiments/demo.yaml")  # = evalkit.resources
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildWithData(build_py):
    """build_py, then the checkout's data folders under evalkit/_data with their layout kept."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's folders where they are
        target = Path(self.build_lib) / "evalkit" / "_data"
        for relative in DATA_FOLDERS:
            source, dest = ROOT / relative, target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest, ignore=SKIP, dirs_exist_ok=True)
            else:
                shutil.copy2(source, dest)


setup(cmdclass={"build_py": BuildWithData})
