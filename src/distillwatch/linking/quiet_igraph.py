"""igraph without its matplotlib backend.

Importing igraph imports ``matplotlib.pyplot`` whenever matplotlib is
installed (the ``bench`` extra installs it): about 0.45 s of CPU in the
process that runs the replay, for plotting code linking never calls. Unless
matplotlib is already loaded, igraph is imported here while ``import
matplotlib`` fails, so it keeps its stand-in for the backend; matplotlib
itself imports normally afterwards. igraph's own plotting to matplotlib is
then unavailable in this process (``Graph.community_leiden`` and the rest
are unaffected).
"""

from __future__ import annotations

import sys

if "matplotlib" in sys.modules:
    import igraph as ig
else:
    sys.modules["matplotlib"] = None  # type: ignore[assignment]
    try:
        import igraph as ig
    finally:
        del sys.modules["matplotlib"]

__all__ = ["ig"]
