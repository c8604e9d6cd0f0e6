"""Command line: ``distillwatch detect | validate | simulate | demo | bench | gateway``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)
if not console.is_terminal:  # logs and CI: don't squeeze tables into 80 columns
    console = Console(stderr=True, width=140)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} events"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _run_detect(
    events: Path,
    out: Path,
    accounts: Path | None,
    config: Path | None,
    window: str | None,
    workers: int = 0,
) -> None:
    from distillwatch.engine.detect import detect
    from distillwatch.scoring.config import Settings

    overrides = {"replay": {"window": window}} if window else {}
    settings = Settings.load(config, **overrides)
    with _progress() as prog:
        tasks: dict[str, TaskID] = {}

        def tick(stage: str, n: int) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(stage, total=None)
            prog.advance(tasks[stage], n)

        summary = detect(events, out, accounts, settings, progress=tick, workers=workers or None)
    console.print(summary.line())
    table = Table(title=f"verdicts in {out}")
    for col in ("accounts", "end users", "campaigns", *summary.actions, "seconds"):
        table.add_column(col)
    table.add_row(
        str(summary.accounts),
        str(summary.end_users_scored),
        str(summary.campaigns),
        *[str(v) for v in summary.actions.values()],
        f"{summary.seconds['total']:.1f}",
    )
    console.print(table)


@app.command()
def detect(
    events: Annotated[Path, typer.Argument(help="events file or directory (events.md section 1)")],
    out: Annotated[Path, typer.Option("--out", help="output directory for verdicts")],
    accounts: Annotated[Path | None, typer.Option(help="accounts side table")] = None,
    config: Annotated[Path | None, typer.Option(help="settings YAML (overrides defaults)")] = None,
    window: Annotated[str | None, typer.Option(help="replay micro-batch width, e.g. 10m")] = None,
    engine: Annotated[str, typer.Option(help="duckdb (embedded) or spark")] = "duckdb",
    workers: Annotated[int, typer.Option(help="feature processes (0: one per CPU)")] = 0,
) -> None:
    """Detect distillation accounts and campaigns; write accounts.jsonl and campaigns.jsonl."""
    if engine == "spark":
        from distillwatch.engine.spark import detect_spark

        detect_spark(events, out, accounts, config)
        return
    if engine != "duckdb":
        raise typer.BadParameter(
            f"unknown engine {engine!r} (duckdb or spark)", param_hint="--engine"
        )
    _run_detect(events, out, accounts, config, window, workers)


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="events file or directory")],
    rejects: Annotated[Path, typer.Option(help="where to write rejects")] = Path("rejects.jsonl"),
) -> None:
    """Read and validate events only; write rejects with file, line and reason."""
    from distillwatch.ingest.validate import validate as run

    stats = run(path, rejects)
    console.print(stats.summary())
    if stats.rejected:
        console.print(f"rejects written to {rejects}")


@app.command()
def simulate(
    scenario: Annotated[str, typer.Option(help="scenario name (see docs/simulator.md)")] = "demo",
    out: Annotated[Path, typer.Option(help="output directory")] = Path("sim-out"),
    scale: Annotated[float, typer.Option(help="multiplies accounts and volumes")] = 1.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or jsonl")] = "parquet",
    days: Annotated[int | None, typer.Option(help="shorten the scenario to N days")] = None,
) -> None:
    """Generate labelled traffic (events, accounts, labels)."""
    from distillwatch.sim import simulate as run

    summary = run(scenario, out, scale=scale, seed=seed, fmt=fmt, days=days)  # type: ignore[arg-type]
    console.print(summary)


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(help="keep outputs here (default: temp dir)")] = None,
    scenario: Annotated[str, typer.Option(help="scenario to simulate")] = "demo",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Simulate labelled traffic, detect on the embedded default, print a scorecard."""
    from distillwatch.bench.runner import run_scenario, scorecard_table
    from distillwatch.sim import simulate as sim

    base = out or Path(tempfile.mkdtemp(prefix="distillwatch-demo-"))
    sim_dir = base / "sim"
    console.print(f"simulating [bold]{scenario}[/] (seed {seed}) into {sim_dir}")
    sim(scenario, sim_dir, seed=seed)
    _run_detect(sim_dir / "events", base / "verdicts", sim_dir / "accounts.jsonl", None, None)
    rows = run_scenario(sim_dir, base / "verdicts", baselines=True)
    console.print(scorecard_table(rows, title=f"scorecard: {scenario}, seed {seed}"))


@app.command()
def bench(
    out: Annotated[Path, typer.Option(help="results directory")] = Path("bench/results"),
    quick: Annotated[bool, typer.Option(help="small scale (CI)")] = False,
) -> None:
    """Run detection and baselines on named scenarios; write results table and plots."""
    from distillwatch.bench.runner import run_bench

    run_bench(out, quick=quick, console=console)


@app.command()
def gateway(config: Annotated[Path, typer.Option("--config", help="gateway YAML")]) -> None:
    """Serve the inline gateway (see docs/gateway.md)."""
    from distillwatch.gateway import serve

    serve(str(config))


if __name__ == "__main__":  # pragma: no cover
    app()
