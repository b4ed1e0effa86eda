"""``societies report``: the HTML report of one or several runs, and optional exports."""

from __future__ import annotations

from pathlib import Path

import click

from societies.cli.main import user_errors


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=Path("report.html"),
    show_default=True, help="The HTML file to write.",
)  # fmt: skip
@click.option(
    "--export", "export_dir", type=click.Path(path_type=Path),
    help="Also write every table (CSV, Parquet, Table 2 as LaTeX and Markdown) and every "
    "figure (PNG, SVG) into this folder.",
)  # fmt: skip
@click.option(
    "--transcripts", type=click.IntRange(min=0), default=50, show_default=True,
    help="Transcript trees (repeat x case x society, every strategy) the browser carries per "
    "run, spread evenly over the run (0: none). Bounds the file's size; `societies view` "
    "browses them all.",
)  # fmt: skip
@click.option(
    "--transcript-repeats", type=click.IntRange(min=1),
    help="Sample transcripts from the first N repeats only (default: every repeat).",
)  # fmt: skip
@click.option(
    "--transcript-cases", type=click.IntRange(min=1),
    help="Sample transcripts from the first N cases only (default: every case).",
)  # fmt: skip
@user_errors
def report(
    run_dirs: tuple[Path, ...],
    output: Path,
    export_dir: Path | None,
    transcripts: int,
    transcript_repeats: int | None,
    transcript_cases: int | None,
) -> None:
    """Write one self-contained HTML report of RUN_DIRS: summary, Table 2, figures, every
    metric table and a transcript browser."""
    from societies.analysis.completeness import incomplete_runs
    from societies.analysis.figures import save_figures
    from societies.analysis.load import load_run
    from societies.analysis.tables import export
    from societies.report.render import write_report

    analysis = load_run(list(run_dirs))
    write_report(
        analysis,
        output,
        transcripts=transcripts,
        transcript_repeats=transcript_repeats,
        transcript_cases=transcript_cases,
    )
    for run, (done, planned) in incomplete_runs(analysis).items():
        click.echo(
            f"warning: {run} is incomplete ({done:,} of {planned:,} last-round society answers); "
            "the report says so",
            err=True,
        )
    click.echo(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    if export_dir is not None:
        written = export(analysis, export_dir) + save_figures(analysis, export_dir)
        click.echo(f"wrote {len(written)} files into {export_dir}")
