"""Test-wide settings: tests use the corpus sample shipped in the package, so
they behave the same with or without ../shared/data."""

from __future__ import annotations

import os

os.environ.setdefault("DISTILLWATCH_DATA_DIR", "/nonexistent/use-the-shipped-sample")
