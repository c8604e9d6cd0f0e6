"""Readers over the fixture files: formats, directories, rejects, validate, accounts."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillwatch.ingest.readers import iter_event_batches, read_accounts, read_events
from distillwatch.ingest.rejects import RAW_EXCERPT_BYTES, RejectSink
from distillwatch.ingest.schema import ACCOUNT_SCHEMA, EVENT_SCHEMA
from distillwatch.ingest.validate import validate

FIX = Path(__file__).parent / "fixtures" / "ingest"


def rejects_of(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("name", ["good.jsonl", "good.jsonl.gz", "good.jsonl.zst"])
def test_good_variants_identical(name: str) -> None:
    sink = RejectSink()
    t = read_events(FIX / name, sink)
    assert sink.stats.summary() == "read 8, accepted 8, rejected 0"
    assert t.schema == EVENT_SCHEMA
    assert t.equals(read_events(FIX / "good.jsonl"))
    assert t.column("id").to_pylist() == [f"req_{i}" for i in range(8)]
    ts = [x.value for x in t.column("ts")]
    # 0: Z; 1: +02:00; 2: epoch s; 3: epoch ms; 7: space separator and -05:00
    assert ts[0] == 1776852003120
    assert ts[1] == 1776852063000
    assert ts[2] == 1776852063000
    assert ts[3] == 1776852063120
    assert ts[7] == 1776870423500
    r4 = t.slice(4, 1).to_pylist()[0]
    assert r4["system"] == "Anthropic-style system prompt."
    assert r4["prompt"] == "part one\npart two"
    assert (r4["n_user_turns"], r4["n_assistant_turns"], r4["n_tool_messages"]) == (1, 1, 1)
    assert (r4["tools"], r4["stream"]) == (2, True)
    assert t.column("account_id").to_pylist()[5] == "12345"
    r6 = t.slice(6, 1).to_pylist()[0]
    assert r6["prompt"] == "second question" and r6["n_tool_messages"] == 1
    assert (r6["logprobs"], r6["top_logprobs"], r6["seed"]) == (True, 5, 7)
    assert r6["status"] is None and r6["input_tokens"] is None


EXPECTED_BAD = [
    (2, "not JSON: "),
    (4, "ts: missing"),
    (5, "account_id: missing"),
    (6, "request.messages: missing"),
    (7, "ts: unparseable time 'yesterday at noon'"),
    (8, "ts: time without UTC offset '2026-04-22T10:00:00'"),
    (9, "request.params.max_tokens: expected integer, got str"),
    (10, "request.messages: expected list, got str"),
    (11, "account_id: expected string, got float"),
    (12, "invalid UTF-8 at byte 37"),
    (13, "not a JSON object (got list)"),
    (14, "request.params.n: 1000 out of range [1, 128]"),
    (15, "line too long: "),
]


def test_bad_lines_exact(tmp_path: Path) -> None:
    rj = tmp_path / "rejects.jsonl"
    with RejectSink(rj) as sink:
        batches = list(iter_event_batches(FIX / "bad.jsonl", sink, max_line_bytes=4096))
    # 16 physical lines, one blank: 15 read
    assert sink.stats.summary() == "read 15, accepted 2, rejected 13"
    t = pa.Table.from_batches(batches)
    assert t.column("id").to_pylist() == ["req_0", "req_1"]
    recs = rejects_of(rj)
    assert [(r["line"], r["source"]) for r in recs] == [
        (n, str(FIX / "bad.jsonl")) for n, _ in EXPECTED_BAD
    ]
    for r, (_, why) in zip(recs, EXPECTED_BAD, strict=True):
        reason = str(r["reason"])
        assert reason == why or (why.endswith(": ") and reason.startswith(why)), reason
    assert "\\xe9" in str(recs[9]["raw"])  # invalid byte shown escaped
    huge = recs[-1]
    assert str(huge["reason"]).endswith("> 4096") and int(str(huge["reason"]).split()[3]) > 10_000
    assert all(len(str(r["raw"]).encode()) <= RAW_EXCERPT_BYTES + 3 for r in recs)


def test_default_line_limit_accepts_10k_line() -> None:
    sink = RejectSink()
    list(iter_event_batches(FIX / "bad.jsonl", sink))
    assert sink.stats.summary() == "read 15, accepted 3, rejected 12"


@pytest.mark.parametrize("fast", [True, False])
def test_parquet_rows(tmp_path: Path, fast: bool) -> None:
    rj = tmp_path / "r.jsonl"
    with RejectSink(rj) as sink:
        t = pa.Table.from_batches(
            list(iter_event_batches(FIX / "events.parquet", sink, fast_parquet=fast)),
            schema=EVENT_SCHEMA,
        )
    assert sink.stats.summary() == "read 20, accepted 16, rejected 4"
    assert [(r["line"], r["reason"]) for r in rejects_of(rj)] == [
        (4, "ts: missing"),
        (8, "account_id: empty string"),
        (12, "request.messages: empty list"),
        (16, "request.params.temperature: -1.0 out of range [0.0, 10.0]"),
    ]
    assert sorted(t.column("id").to_pylist()) == sorted(
        f"req_{i}" for i in range(20) if i not in (3, 7, 11, 15)
    )
    assert t.column("prompt").to_pylist()[0] == "Explain step by step how you would solve task 0."


def test_directory_order_and_skips() -> None:
    sink = RejectSink()
    t = read_events(FIX / "dir", sink)
    assert sink.stats.summary() == "read 9, accepted 9, rejected 0"
    assert t.column("id").to_pylist() == [f"req_{i}" for i in (0, 1, 2, 3, 4, 30, 31, 32, 33)]


def test_batch_size_bounds_batches() -> None:
    sink = RejectSink()
    sizes = [b.num_rows for b in iter_event_batches(FIX / "good.jsonl", sink, batch_size=3)]
    assert sizes == [3, 3, 2]


def test_truncated_gzip_is_one_reject(tmp_path: Path) -> None:
    data = gzip.compress((FIX / "good.jsonl").read_bytes())
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(data[: len(data) // 2])
    with RejectSink(tmp_path / "r.jsonl") as sink:
        list(iter_event_batches(p, sink))
    assert sink.stats.rejected == 1
    assert sink.stats.read == sink.stats.accepted + 1
    (rec,) = rejects_of(tmp_path / "r.jsonl")
    assert str(rec["reason"]).startswith("unreadable file: ")


def test_bad_paths(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="unsupported input file"):
        list(iter_event_batches(tmp_path / "x.txt", RejectSink()))
    with pytest.raises(FileNotFoundError):
        list(iter_event_batches(tmp_path / "missing.jsonl", RejectSink()))


def test_validate_writes_rejects(tmp_path: Path) -> None:
    rj = tmp_path / "out" / "rejects.jsonl"
    stats = validate(FIX / "bad.jsonl", rj, max_line_bytes=4096)
    assert stats.summary() == "read 15, accepted 2, rejected 13"
    assert len(rejects_of(rj)) == 13
    assert validate(FIX / "good.jsonl.zst", None).summary() == "read 8, accepted 8, rejected 0"


def test_accounts_jsonl(tmp_path: Path) -> None:
    rj = tmp_path / "r.jsonl"
    with RejectSink(rj) as sink:
        t = read_accounts(FIX / "accounts.jsonl", sink)
    assert t.schema == ACCOUNT_SCHEMA
    assert t.column("account_id").to_pylist() == ["org_0", "org_1", "77"]
    assert t.column("reseller").to_pylist() == [None, True, None]
    assert [c.value if c.is_valid else None for c in t.column("created_at")] == [
        1767312000000,
        None,
        1767312000000,
    ]
    assert [(r["line"], r["reason"]) for r in rejects_of(rj)] == [
        (4, f"account_id: duplicate of {FIX / 'accounts.jsonl'}:1"),
        (
            5,
            "tier: 'platinum' is not one of free, pay_as_you_go, startup_program, education, "
            "research_program, enterprise",
        ),
        (6, "account_id: missing"),
    ]
    assert sink.stats.summary() == "read 6, accepted 3, rejected 3"


def test_accounts_csv_and_parquet(tmp_path: Path) -> None:
    sink = RejectSink()
    t = read_accounts(FIX / "accounts.csv", sink)
    assert sink.stats.summary() == "read 4, accepted 2, rejected 2"
    assert t.to_pylist()[1]["verified"] is True and t.to_pylist()[0]["reseller"] is False
    pq.write_table(t, tmp_path / "acc.parquet")
    assert read_accounts(tmp_path / "acc.parquet").equals(t)
