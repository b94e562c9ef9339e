"""Build script. Metadata lives in pyproject.toml; this file exists to build the compiled extension."""

from setuptools import setup

setup()
