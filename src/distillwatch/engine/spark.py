"""``distillwatch detect --engine spark``: the same detection, ingest and sort on Apache Spark.

What runs where (details and limits: ``docs/spark.md``):

1. **Executors, parallel per input file** -- ``mapInArrow`` over the file list
   runs :mod:`.spark_wire`'s task: the embedded engine's own reader and
   ``compute_features`` (no second copy of any feature), yielding Arrow
   batches of features, rejects and per-file tallies.
2. **Spark, parallel** -- a global sort on ``(ts, file, row)`` and a write of the
   sorted rows as Parquet to a staging location (range-partitioned, so part
   files are in event-time order by name).
3. **Driver, sequential in event time** -- the sorted parts are streamed back
   in Arrow batches (bounded memory), cut into the same event-time windows
   and folded through the same :class:`~.replay.Replay` (entity state, signals,
   scorer, campaign linker); then hindsight and the same verdict writer.

The causal replay stays sequential because a decision at time t depends on
all state before t, campaigns included.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from distillwatch.engine.detect import DetectSummary, Progress, finish, make_linker, write_summary
from distillwatch.engine.replay import Replay
from distillwatch.engine.spark_wire import (
    KIND_FEATURE,
    KIND_REJECT,
    KIND_TALLY,
    features_task,
    from_wire,
    spark_ddl,
)
from distillwatch.engine.store import cut_windows
from distillwatch.ingest.readers import DEFAULT_BATCH_SIZE, read_accounts
from distillwatch.ingest.rejects import RejectSink
from distillwatch.ingest.sources import list_files
from distillwatch.scoring.config import Settings

ENV_MASTER = "DISTILLWATCH_SPARK_MASTER"
ENV_STAGING = "DISTILLWATCH_SPARK_STAGING"
FETCH_ROWS = 200_000


def spark_session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
    """The active SparkSession, or a new one (``master`` default: spark-submit's, else local[*])."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("distillwatch-detect")
    master = master or os.environ.get(ENV_MASTER)
    if master:
        builder = builder.master(master)
    settings = {
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        **(conf or {}),
    }
    for k, v in settings.items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def _fs(uri: str) -> tuple[pafs.FileSystem, str]:
    """A PyArrow file system for a staging location as Spark names it."""
    if uri.startswith("s3a://"):  # Hadoop's S3 scheme; PyArrow calls it s3
        uri = "s3://" + uri[len("s3a://") :]
    if "://" in uri:
        fs, root = pafs.FileSystem.from_uri(uri)
        return fs, str(root)
    return pafs.LocalFileSystem(), str(Path(uri).resolve())


def sorted_parts(uri: str) -> list[tuple[pafs.FileSystem, str]]:
    """The Parquet part files Spark wrote under ``uri``, in partition (= sort) order."""
    fs, root = _fs(uri)
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=False))
    names = sorted(
        i.path
        for i in infos
        if i.base_name.startswith("part-") and i.base_name.endswith(".parquet")
    )
    return [(fs, p) for p in names]


def read_wire(uri: str, fetch_rows: int = FETCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Stream the staged wire rows in sorted order, ``fetch_rows`` at a time."""
    for fs, path in sorted_parts(uri):
        with fs.open_input_file(path) as fh:
            yield from pq.ParquetFile(fh).iter_batches(batch_size=fetch_rows)


class _Drain:
    """Splits the sorted wire stream: rejects and tallies out, feature frames through."""

    def __init__(self, rejects_fh: Any) -> None:
        self.fh = rejects_fh
        self.accepted = 0
        self.rejected = 0
        self.features = 0

    def frames(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pl.DataFrame]:
        for rb in batches:
            kind = rb.column("_kind")
            if pc.any(pc.not_equal(kind, KIND_FEATURE)).as_py():
                meta = rb.filter(pc.not_equal(kind, KIND_FEATURE))
                mk = meta.column("_kind")
                for line in meta.filter(pc.equal(mk, KIND_REJECT)).column("_reject").to_pylist():
                    self.fh.write(line.encode("utf-8") + b"\n")
                    self.rejected += 1
                counts = meta.filter(pc.equal(mk, KIND_TALLY)).column("_count")
                self.accepted += int(pc.sum(counts).as_py() or 0)
                rb = rb.filter(pc.equal(kind, KIND_FEATURE))
            if rb.num_rows:
                self.features += rb.num_rows
                yield from_wire(rb)


def detect_spark(
    events: Path | str,
    out_dir: Path | str,
    accounts: Path | str | None = None,
    config: Path | str | None = None,
    *,
    settings: Settings | None = None,
    master: str | None = None,
    staging: str | None = None,
    spark_conf: dict[str, str] | None = None,
    progress: Progress | None = None,
    link: bool = True,
    keep_staging: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> DetectSummary:
    """Run detection with Spark doing ingest, features and the event-time sort.

    ``events`` must be readable at the same path from every executor (a shared
    or mounted file system); ``staging`` (default ``out_dir/_spark_staging``,
    or ``$DISTILLWATCH_SPARK_STAGING``) must be writable by Spark and readable
    by the driver (local path, ``file://``, ``s3://``, ``gs://``, ``hdfs://``).
    """
    settings = settings or Settings.load(Path(config) if config is not None else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = staging or os.environ.get(ENV_STAGING) or (out / "_spark_staging").resolve().as_uri()
    summary = DetectSummary()
    t0 = time.perf_counter()
    acct_df: pl.DataFrame | None = None
    with RejectSink(out / "rejects.jsonl") as sink:
        if accounts is not None:
            df = pl.from_arrow(read_accounts(accounts, sink))
            assert isinstance(df, pl.DataFrame)
            acct_df = df
    paths = [str(p) for p in list_files(events)]
    spark = spark_session(master, spark_conf)
    if paths:
        ids = spark.range(0, len(paths), 1, numPartitions=len(paths))
        mapped = ids.mapInArrow(features_task(paths, batch_size), spark_ddl())
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        mapped = mapped.persist(
            StorageLevel.DISK_ONLY
        )  # the sort's sampling pass must not recompute features
        ordered = mapped.sort(F.col("ts").asc_nulls_first(), "_file", "_seq")
        ordered.write.mode("overwrite").parquet(staging)
        mapped.unpersist()
    t1 = time.perf_counter()
    linker = make_linker(settings, acct_df) if link else None
    replay = Replay(settings, acct_df, linker)
    with open(out / "rejects.jsonl", "ab") as rej_fh:
        drain = _Drain(rej_fh)
        if paths:
            for end_ms, window in cut_windows(drain.frames(read_wire(staging)), settings.window_ms):
                replay.step(window, end_ms)
                if progress:
                    progress("replay", window.height)
    if drain.features != drain.accepted:
        raise RuntimeError(
            f"staged {drain.features} feature rows but tasks accepted {drain.accepted}"
        )
    summary.accepted, summary.rejected = drain.accepted, drain.rejected
    summary.read = drain.accepted + drain.rejected
    t2 = time.perf_counter()
    finish(replay, linker, out, summary)
    t3 = time.perf_counter()
    if not keep_staging:
        _remove(staging)
    summary.seconds = {
        "spark_ingest_features_sort": round(t1 - t0, 3),
        "replay": round(t2 - t1, 3),
        "hindsight_write": round(t3 - t2, 3),
        "total": round(t3 - t0, 3),
    }
    write_summary(out, summary)
    return summary


def _remove(uri: str) -> None:
    fs, root = _fs(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        shutil.rmtree(root, ignore_errors=True)
    else:
        fs.delete_dir(root)
