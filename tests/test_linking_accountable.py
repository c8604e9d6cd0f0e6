"""linking.accountable.hard_linked: which campaign members share a hard key
(payment, e-mail domain, sign-up burst, IP prefix, reseller) with another
member of their own campaign."""

from __future__ import annotations

import numpy as np

from distillwatch.linking.accountable import FARM, HARD_KINDS, NONE, PEERS, hard_linked
from distillwatch.linking.evidence import KIND_CODE, KIND_NAMES


def _rows(*rows: tuple[int, int, str]) -> dict[str, np.ndarray]:
    node, key, kind = zip(*rows, strict=True)
    return {
        "node": np.array(node, np.int64),
        "key": np.array(key, np.uint64),
        "kind": np.array([KIND_CODE[k] for k in kind], np.int8),
    }


def test_hard_kinds_are_those_naming_an_operator_fact() -> None:
    assert {"payment", "signup+client", "email+prefix", "prefix+template"} <= set(HARD_KINDS)
    soft = set(KIND_NAMES) - set(HARD_KINDS)
    assert {"client+template", "system+template", "sync+client", "system+params"} <= soft


def test_only_a_hard_key_shared_inside_the_campaign_counts() -> None:
    camp = np.array([0, 0, 0, 1, 0, -1])
    table = _rows(
        (0, 10, "payment"),
        (1, 10, "payment"),  # 0 and 1: one card, same campaign -> hard
        (0, 20, "client+template"),
        (2, 20, "client+template"),  # 2: content only -> soft
        (3, 30, "payment"),
        (4, 30, "payment"),  # 3 and 4 share a card but not a campaign
        (4, 40, "prefix+template"),
        (5, 40, "prefix+template"),  # 5 is in no campaign
    )
    got = hard_linked([table], camp, np.array([0, 1, 2, 3, 4]))
    assert got.tolist() == [FARM, FARM, NONE, NONE, NONE]


def test_evidence_split_over_parts_is_joined() -> None:
    """The linker's merged table, pending frames and raw rows are one evidence."""
    camp = np.array([0, 0, 0])
    merged = _rows((0, 7, "signup+client"), (2, 8, "client+template"))
    pending = _rows((1, 7, "signup+client"))
    got = hard_linked([merged, pending, _rows((2, 8, "sync+client"))], camp, np.array([0, 1, 2]))
    assert got.tolist() == [FARM, FARM, NONE]
    assert hard_linked([], camp, np.array([0])).tolist() == [NONE]


def test_hard_keys_among_accountable_peers_do_not_tie_them_to_the_farm() -> None:
    """Colleagues on one corporate network share a prefix with each other; in a
    campaign that also holds a farm, that is no hard link to the farm. A prefix
    shared with a farm member still is."""
    camp = np.array([0, 0, 0, 0, 0])
    accountable = np.array([True, True, True, False, False])
    table = _rows(
        (0, 50, "prefix+client"),
        (1, 50, "prefix+client"),  # 0 and 1: one office network
        (0, 60, "system+params"),
        (3, 60, "system+params"),  # 0 and the farm: content only
        (2, 70, "prefix+template"),
        (4, 70, "prefix+template"),  # 2 shares a network with farm member 4
    )

    def exempt(nodes: np.ndarray) -> np.ndarray:
        return accountable[nodes]

    nodes = np.array([0, 1, 2])
    assert hard_linked([table], camp, nodes).tolist() == [FARM, FARM, FARM]
    assert hard_linked([table], camp, nodes, exempt).tolist() == [PEERS, PEERS, FARM]


def test_hard_links_remember_the_tables_hard_rows_until_it_is_replaced() -> None:
    """HardLinks filters each evidence part once while it is the same object,
    and a new table (a merge makes new arrays) is filtered again."""
    from distillwatch.linking.accountable import HardLinks

    camp = np.array([0, 0, 0])
    table = _rows((0, 7, "payment"), (2, 8, "client+template"))
    pending = _rows((1, 7, "payment"))
    hl = HardLinks()
    parts: list[dict[str, np.ndarray]] = [table, pending]
    got = hl.of(np.array([0, 1, 2]), camp, lambda: parts)
    assert got.tolist() == hard_linked(parts, camp, np.array([0, 1, 2])).tolist()
    assert got.tolist() == [FARM, FARM, NONE]
    first = hl._rows.seen[id(table["key"])][1]
    hl.tick()
    hl.of(np.array([2]), camp, lambda: parts)
    assert hl._rows.seen[id(table["key"])][1] is first  # same table: not filtered again
    merged = _rows((0, 7, "payment"), (2, 7, "payment"))
    parts = [merged, pending]  # after a merge
    hl.tick()
    assert hl.of(np.array([2]), camp, lambda: parts).tolist() == [FARM]
    assert id(table["key"]) not in hl._rows.seen or hl._rows.seen[id(table["key"])][1] is not first
    assert len(hl._rows.seen) == 2


def test_frames_among_the_parts_are_filtered_too() -> None:
    """Pending evidence comes as Polars frames of all columns."""
    import polars as pl

    camp = np.array([0, 0])
    pending = pl.DataFrame(_rows((0, 7, "payment"), (1, 7, "payment"), (1, 9, "sync+client")))
    assert hard_linked(
        [_rows((0, 5, "client+template")), pending], camp, np.array([0, 1])
    ).tolist() == [FARM, FARM]
