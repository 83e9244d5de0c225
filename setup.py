"""The package is described in setup.cfg; this adds one build step: the browser libraries
the pages load are put into the package first (see build_vendor.py), however it is built."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import build_vendor  # noqa: E402


class BuildPyWithBrowserLibraries(build_py):
    def run(self):
        try:
            build_vendor.ensure(ROOT)
        except build_vendor.VendorError as exc:
            raise SystemExit(f"error: {exc}") from None
        super().run()


setup(cmdclass={"build_py": BuildPyWithBrowserLibraries})
