"""Link reasons and campaign links (linking/report.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from distillwatch.linking.evidence import KIND_CODE, compact
from distillwatch.linking.report import campaign_links, reasons_and_links, reasons_by_node


def test_reasons_and_links_in_one_pass_equal_the_separate_passes() -> None:
    rng = np.random.default_rng(11)
    kinds = np.array([KIND_CODE[k] for k in ("payment", "prefix+template", "sync+client")])
    for _ in range(20):
        rows, nodes = int(rng.integers(1, 400)), int(rng.integers(2, 40))
        key = rng.integers(1, 60, rows).astype(np.uint64)
        members = compact(
            [
                {
                    "key": key,
                    "kind": kinds[key % len(kinds)].astype(np.int8),
                    "node": rng.integers(0, nodes, rows).astype(np.int32),
                    "a": key * np.uint64(7),
                    "b": key % np.uint64(5),
                }
            ]
        )
        camp = rng.integers(-1, 4, nodes).astype(np.int64)
        labels = {int(k) * 7: f"v{k}" for k in range(1, 60, 3)}
        reasons, links = reasons_and_links(members, camp, labels)
        linker: Any = SimpleNamespace(
            node_ids=list(range(nodes)),
            members=members,
            camp_of_node=camp,
            facts=SimpleNamespace(labels=labels),
        )
        assert reasons == reasons_by_node(members, camp, labels)
        assert links == campaign_links(linker)
