"""``societies report``: the HTML is self-contained, and a real browser shows a transcript."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from societies.cli.main import cli
from tests.cdp import find_chromium, open_page


@pytest.fixture(scope="module")
def report(quick_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(cli, ["report", str(quick_run), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_report_is_self_contained(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    # No external resource of any kind: every figure is a data URI, scripts are inline.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script src" not in html and "<link" not in html
    assert html.count("data:image/png;base64,") == 7
    for heading in ("Table 2", "Transcript browser", "Conformity", "Self-consistency"):
        assert heading in html


def test_report_and_export_from_the_cli(quick_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        cli, ["report", str(quick_run), "-o", str(out), "--export", str(tmp_path / "x")]
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "x").iterdir()}
    assert {"table2.tex", "table2.md", "accuracy.parquet", "cost_vs_accuracy.svg"} <= names


def test_report_of_a_missing_run_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "no run store" in result.output and "Traceback" not in result.output


def test_transcript_browser_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    shots = Path(os.environ.get("SOCIETIES_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with open_page(chromium, tmp_path / "profile", report.as_uri()) as page:
        assert page.evaluate("document.querySelectorAll('#sel-case option').length") == 6
        # Pick a transcript the way a user does: choose from the selects.
        shown = page.evaluate(
            """(function () {
                function pick(id, value) {
                  var s = document.getElementById(id); s.value = value;
                  s.dispatchEvent(new Event('change'));
                }
                pick('sel-case', 'qs-03'); pick('sel-society', '2eg-1oc');
                pick('sel-strategy', '101');
                document.getElementById('browser').scrollIntoView();
                return document.getElementById('transcript').getAttribute('data-calls-shown');
            })()"""
        )
        assert shown == "12"  # 3 agents x 4 rounds
        text = page.evaluate("document.getElementById('transcript').innerText")
        assert "qs-03" in text and "agent 2 (overconfident · sim:default)" in text
        assert "reflection" in text.lower() and "debate" in text.lower()
        assert (
            page.evaluate(
                "document.querySelectorAll('#transcript .badge.ok, #transcript .badge.bad').length"
            )
            >= 12
        )
        page.screenshot(shots / "report-transcript.png")
        assert page.errors() == []
        external = [u for u in page.requested_urls() if not u.startswith(("file:", "data:"))]
        assert external == []
    assert (shots / "report-transcript.png").stat().st_size > 10_000


def test_script_json_cannot_break_out_of_its_element() -> None:
    import json

    from societies.report.render import script_json

    hostile = {"r": "</script><script>alert(1)</script><!-- x"}
    text = script_json(hostile)
    assert "<" not in text
    assert json.loads(text) == hostile


def test_transcript_limits(quick_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "small.html"
    args = ["report", str(quick_run), "-o", str(out), "--transcript-cases", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert '"id":"qs-02"' in html and '"id":"qs-03"' not in html


def test_incomplete_run_banner_and_bounded_sample(tmp_path: Path) -> None:
    from tests.synthetic_store import build_store

    # Failed calls (0.2% of answers, seeded) leave some society answers incomplete.
    build_store(tmp_path / "run", societies=2, cases=100, invocation_status="incomplete")
    out = tmp_path / "r.html"
    args = ["report", str(tmp_path / "run"), "-o", str(out), "--transcripts", "7"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "is incomplete" in result.output
    html = out.read_text(encoding="utf-8")
    assert 'id="incomplete"' in html and "incomplete-cell" in html
    data = re.search(r'id="transcript-data">(.*?)</script>', html, re.S)
    assert data is not None
    import json

    run = json.loads(data.group(1))["runs"][0]
    assert run["total_trees"] == 200 and len(run["trees"]) == 7
    # Spread over the run: both societies and cases from both ends of the list.
    assert {t[2] for t in run["trees"]} == {"s00-0eg", "s01-1eg"}
    assert (
        min(int(t[1][1:]) for t in run["trees"])
        < 20
        < 80
        < max(int(t[1][1:]) for t in run["trees"])
    )


def test_complete_run_has_no_banner(report: Path) -> None:
    assert 'id="incomplete"' not in report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pack_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of two runs with study packs: edit-conflict (briefing claims and triples) and
    reversal-relay (reversal probes)."""
    root = tmp_path_factory.mktemp("packs")
    seeds = Path(__file__).resolve().parents[1] / "experiments" / "seeds"
    for name, limit in (("edit-conflict", "12"), ("reversal-relay", "4")):
        args = ["run", str(seeds / f"{name}.yaml"), "--out", str(root / name), "--quiet",
                "--limit", limit]  # fmt: skip
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    out = root / "report.html"
    args = ["report", str(root / "edit-conflict"), str(root / "reversal-relay"), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return out


def test_a_report_without_packs_has_no_study_sections(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert 'id="packs"' not in html and 'href="#packs"' not in html


def test_study_sections_render_in_headless_chromium(pack_report: Path, tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    shots = Path(os.environ.get("SOCIETIES_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with open_page(chromium, tmp_path / "profile", pack_report.as_uri() + "#packs") as page:
        sections = page.evaluate(
            """JSON.stringify(Array.from(document.querySelectorAll('#packs > section.pack'))
                .map(function (s) {
                  return {id: s.id, title: s.querySelector('h2').innerText,
                          tables: Array.from(s.querySelectorAll('table')).map(function (t) {
                            return {rows: t.querySelectorAll('tbody tr').length,
                                    head: Array.from(t.querySelectorAll('th'))
                                      .map(function (h) { return h.innerText; })};
                          }),
                          visible: s.getBoundingClientRect().height > 0};
                }))"""
        )
        import json

        shown = json.loads(sections)
        assert [s["id"] for s in shown] == ["pack-edit-adoption", "pack-conflict", "pack-reversal"]
        assert all(s["visible"] for s in shown)
        by_id = {s["id"]: s for s in shown}
        # edit adoption: 4 claiming societies of edit-conflict + relay, x 2 strategies each
        assert by_id["pack-edit-adoption"]["tables"][0]["rows"] == 10
        # conflict: outcome by round, last round, consistency, distortion, round trip
        conflict = by_id["pack-conflict"]["tables"]
        assert [t["rows"] for t in conflict] == [10, 10, 10, 8, 8]
        assert "round 3" in conflict[0]["head"] and "edit A" in conflict[1]["head"]
        # reversal gap: 2 societies x 2 strategies, rounds 0-3
        (gap,) = by_id["pack-reversal"]["tables"]
        assert gap["rows"] == 4 and gap["head"][-1] == "round 3"
        text = page.evaluate("document.getElementById('pack-reversal').innerText")
        assert "relay" in text and "(F " in text
        assert page.evaluate("document.querySelector('nav a[href=\"#packs\"]').innerText") == (
            "Studies"
        )
        page.screenshot(shots / "report-packs.png")
        assert page.errors() == []
