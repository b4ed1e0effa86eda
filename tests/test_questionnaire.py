"""The manipulation check: questionnaire calls off each agent's conversation, never seen by
the debate; ratings read back, by trait; the sim rating by trait; bad settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from societies.analysis.load import load_run
from societies.analysis.stats import bootstrap_ci, bootstrap_diff_ci
from societies.backends.base import CallKey
from societies.backends.fake import Asked, FunctionModel, ScriptedModel
from societies.cli.main import cli
from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.estimate import estimate_plan
from societies.scheduler.tree import planned_calls
from societies.society.questionnaire import PRE_NODE, STANDARD, Item, read_rating, read_ratings
from societies.store import queries
from societies.store.db import RunStore
from tests.helpers import REPO, experiment, run, same_backend, write
from tests.test_bad_input import GOOD, assert_one_line, run_cli

ITEMS = [
    {"id": "sure", "text": "How sure are you of your answers?", "measures": "confidence",
     "scale": {"min": 1, "max": 7, "anchors": {1: "not at all", 7: "completely"}}},
    {"id": "open", "text": "How open are you to other answers?", "measures": "openness",
     "scale": {"min": 1, "max": 5}},
]  # fmt: skip
LEAVES = {1: ["0", "1"], 2: ["00", "01", "10", "11"]}


def _exp(prompts: str = "default", **settings: Any) -> dict[str, Any]:
    exp = experiment(prompts=prompts, rounds=2, strategies="all", **settings)
    exp["task"]["cases"] = 2
    exp["societies"] = [{"name": "s", "agents": ["easy-going", "overconfident", "overconfident"]}]
    exp["questionnaire"] = {"items": ITEMS}
    return exp


def _ratings(sure: int, open_: int) -> str:
    return f"1: {sure}\n2. {open_}/5"


def _by_trait(asked: Asked) -> str:
    """Answers (A); rates 'sure' 2 (easy-going) or 6 (overconfident) before, and after the
    last round the leaf's last digit + 3 (so the two leaves of a branch differ); 'open' 4 or
    1, except agent 2 on case qs-02, which gives no readable rating for it."""
    t, key = asked.truth, asked.request.key
    assert key is not None
    if t.step != "questionnaire":
        return "(A)"
    eg = t.agent.trait.name == "easy-going"
    sure = (2 if eg else 6) if key.node == PRE_NODE else int(key.node[-1]) + 3
    if t.agent.index == 2 and t.case.id == "qs-02":
        return f"1: {sure}\n2: somewhere between 2 and 3"
    return _ratings(sure, 4 if eg else 1)


# -- calls -----------------------------------------------------------------------------------
@pytest.mark.parametrize("prompts", ["default", "machinesom"])
def test_questionnaire_calls_are_exact_on_a_scripted_model(tmp_path: Path, prompts: str) -> None:
    """Every call of the run is in the script and every scripted call is made: per tree and
    agent, the persona turn (machinesom), 7 answer nodes, one questionnaire before round 0
    and one at each of the 4 leaves."""
    exp = _exp(prompts=prompts)
    plan = load_plan(write(tmp_path, exp), Overrides(out=tmp_path / "out"))
    script: dict[CallKey, str] = {}
    for case in plan.cases:
        for agent in range(3):

            def key(node: str, step: str, c: str = case.id, a: int = agent) -> CallKey:
                return CallKey(0, c, "s", node, a, step)  # type: ignore[arg-type]

            if prompts == "machinesom":
                script[key("", "persona")] = "ok"
            for node in ("", "0", "1", "00", "01", "10", "11"):
                script[key(node, "answer")] = "(A)"
            for node in (PRE_NODE, *LEAVES[2]):
                script[key(node, "questionnaire")] = _ratings(5, 3)
    model = ScriptedModel(script)
    assert estimate_plan(plan).calls == len(script)  # the dry run counts them
    _, summary = run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    per_agent = (prompts == "machinesom") + 7 + 1 + 4
    assert summary.made == len(script) == 2 * 3 * per_agent
    assert model.unused() == set()
    assert planned_calls(plan) == summary.planned == summary.made
    assert estimate_plan(plan).reused == summary.made  # and counts them stored after
    assert queries.planned(tmp_path / "out" / "store.sqlite") == summary.made  # the viewer's


def test_no_debate_call_ever_sees_the_questionnaire(tmp_path: Path) -> None:
    """Checked on the stored requests: the questionnaire's prompt and its replies appear in
    the conversation of questionnaire calls only; the pre call continues the persona only."""
    model = FunctionModel(_by_trait)
    run(write(tmp_path, _exp(prompts="machinesom")), tmp_path / "out", same_backend(model))
    store = RunStore(tmp_path / "out" / "store.sqlite", readonly=True)
    try:
        replies = {
            r[0] for r in store.con.execute("SELECT reply FROM calls WHERE step='questionnaire'")
        }
        seen = 0
        for key, messages in store.conversations():
            texts = [m["content"] for m in messages]
            asks = [t for t in texts if "questions about yourself" in t]
            if key.step != "questionnaire":
                seen += 1
                assert not asks and not replies & set(texts), key.text
                continue
            assert len(asks) == 1 and texts[-1] == asks[0]
            if key.node == PRE_NODE:  # persona turn, its "ok", the questionnaire
                assert [m["role"] for m in messages] == ["user", "assistant", "user"]
                assert "Before we start" in texts[-1]
            else:
                assert "The discussion is over" in texts[-1]
                assert len(messages) == 2 + 2 * 3 + 1  # persona, 3 answers, questionnaire
        assert seen == 2 * 3 * 8
    finally:
        store.close()
    # and the simulated model's ground truth carries the items only to questionnaire calls
    for asked in model.requests:
        assert bool(asked.truth.questionnaire) == (asked.truth.step == "questionnaire")


def test_a_stopped_branch_is_asked_where_it_stopped(tmp_path: Path) -> None:
    """qs-01 agrees at round 0: its post questionnaire is keyed on node "" beside the pre one
    on "^". qs-02 agrees after the debate round "0" (asked there once for its two leaves)
    and is asked at the leaves "10" and "11"."""

    def agree(asked: Asked) -> str:
        t, key = asked.truth, asked.request.key
        assert key is not None
        if t.step == "questionnaire":
            return _ratings(4, 2)
        if t.case.id == "qs-01" or key.node.endswith("0"):
            return "(B)"
        return f"({'ABC'[t.agent.index]})"

    exp = _exp()
    exp["societies"][0]["stop"] = "unanimous"
    model = FunctionModel(agree)
    _, summary = run(write(tmp_path, exp), tmp_path / "out", same_backend(model))
    asked = sorted((k.case_id, k.node) for a in model.requests
                   if (k := a.request.key) is not None and k.step == "questionnaire")  # fmt: skip
    want = [("qs-01", ""), ("qs-01", PRE_NODE), ("qs-02", "0"), ("qs-02", "10"),
            ("qs-02", "11"), ("qs-02", PRE_NODE)]  # fmt: skip
    assert asked == sorted(w for w in want for _ in range(3))
    # answers: qs-01 3, qs-02 5 nodes x 3; questionnaires 6 + 12
    assert summary.made == 3 + 15 + 18
    # saved: answers 6 x 3 and 2 x 3; questionnaires (4 - 1) x 3 and (2 - 1) x 3
    assert summary.saved == 18 + 6 + 9 + 3
    assert summary.planned == summary.made + summary.saved == 2 * 3 * (7 + 1 + 4)


def test_resume_asks_no_questionnaire_twice(tmp_path: Path) -> None:
    file, out = write(tmp_path, _exp()), tmp_path / "out"
    model = FunctionModel(_by_trait)
    _, first = run(file, out, same_backend(model))
    assert first.made == 2 * 3 * 12
    con = sqlite3.connect(out / "store.sqlite")
    with con:  # as if the run had stopped before these were answered
        lost = con.execute(
            "DELETE FROM calls WHERE step = 'questionnaire' AND case_id = 'qs-02' "
            "AND node IN (?, '01')",
            (PRE_NODE,),
        ).rowcount
    con.close()
    assert lost == 6
    model.requests.clear()
    _, second = run(file, out, same_backend(model))
    keys = sorted((k.node, k.agent) for a in model.requests if (k := a.request.key) is not None)
    assert second.made == 6 and keys == sorted((n, i) for n in (PRE_NODE, "01") for i in range(3))
    model.requests.clear()
    _, third = run(file, out, same_backend(model))
    assert third.made == 0 and not model.requests
    rows = sqlite3.connect(out / "store.sqlite").execute(
        "SELECT COUNT(*), COUNT(DISTINCT case_id || node || agent) FROM calls "
        "WHERE step = 'questionnaire'"
    )
    assert rows.fetchone() == (2 * 3 * 5, 2 * 3 * 5)


# -- reading ratings -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value", "problem"),
    [
        ("5", 5, None),
        ("5/7", 5, None),
        ("I'd say 5 out of 7", 5, None),
        ("**6**", 6, None),
        ("Six.", 6, None),
        ("5 (on a scale of 1 to 7)", 5, None),
        ("On a scale from 1 to 7, I would rate myself a 3.", 3, None),
        ("6 (7 = completely confident)", 6, None),
        ("4.5", 4.5, None),
        ("", None, "missing"),
        ("I cannot rate myself.", None, "missing"),
        ("somewhere between 2 and 3", None, "missing"),
        ("5 or 6", None, "ambiguous"),
        ("9", None, "out_of_scale"),
        ("0/7", None, "out_of_scale"),
        ("80%", None, "missing"),
    ],
)
def test_a_rating_is_read_or_missing_with_its_reason(
    text: str, value: float | None, problem: str | None
) -> None:
    rating = read_rating(text, 1, 7)
    assert (rating.value, rating.problem) == (value, problem)


def test_ratings_are_found_by_item_label_in_a_whole_reply() -> None:
    items = STANDARD
    got = [
        r.value
        for r in read_ratings("Sure.\n1: 6\n**2.** 5/7\nQ3) I'd say 2 out of 7\n4 - 3", items)
    ]
    assert got == [6, 5, 2, None]  # "4 - 3" has no label delimiter: not a rating of item 4
    assert [r.value for r in read_ratings("1: 6, 2: 5; 3: 2, 4: 1", items)] == [6, 5, 2, 1]
    assert [r.value for r in read_ratings("persuadable: 2\nconfident: 7", items)] == [
        7, None, 2, None
    ]  # fmt: skip
    assert [r.problem for r in read_ratings(None, items)] == ["no_reply"] * 4
    assert [r.value for r in read_ratings("1: 2\n1: 5", items[:2])] == [2, None]  # first wins
    one = (Item("x", "?", 1, 5),)
    assert [r.value for r in read_ratings("I'd go with 4.", one)] == [4]
    assert [r.problem for r in read_ratings("1: 9", one)] == ["out_of_scale"]
    two = read_ratings("1: 4\n2.5", items[:2])  # "2.5" is a decimal, not item 2 rated 5
    assert [(r.value, r.problem) for r in two] == [(4, None), (None, "missing")]


# -- tables ----------------------------------------------------------------------------------
def test_ratings_by_trait_against_a_hand_computed_grid(tmp_path: Path) -> None:
    """2 cases x 3 agents (one easy-going, two overconfident), 2 rounds (leaves 00 01 10 11).
    'sure' before: 2 (eg), 6 (oc); after: each agent-tree's mean over its leaves, of
    0+3, 1+3, 0+3, 1+3 = 3.5 for everyone. 'open': 4 (eg), 1 (oc); agent 2 on qs-02 gives
    no readable rating (1 pre + 4 post responses missing)."""
    run(write(tmp_path, _exp()), tmp_path / "out", same_backend(FunctionModel(_by_trait)))
    a = load_run(tmp_path / "out")
    assert len(a.questionnaire) == 2 * 3 * 5 * 2
    t = {(r["item"], r["trait"], r["timing"]): r for r in a.manipulation_check.to_dict("records")}
    expected = {  # (n agent-trees, missing responses, mean)
        ("sure", "easy-going", "pre"): (2, 0, 2.0),
        ("sure", "overconfident", "pre"): (4, 0, 6.0),
        ("sure", "easy-going", "post"): (2, 0, 3.5),
        ("sure", "overconfident", "post"): (4, 0, 3.5),
        ("open", "easy-going", "pre"): (2, 0, 4.0),
        ("open", "overconfident", "pre"): (3, 1, 1.0),
        ("open", "easy-going", "post"): (2, 0, 4.0),
        ("open", "overconfident", "post"): (3, 4, 1.0),
    }
    assert len(t) == len(expected)
    for key, (n, missing, mean) in expected.items():
        row = t[key]
        assert (row["n"], row["missing"], row["mean"]) == (n, missing, mean), key
        assert row["ci_low"] == row["ci_high"] == mean  # constant samples
    assert list(a.manipulation_check["item"].drop_duplicates()) == ["sure", "open"]
    diffs = a.trait_differences
    assert set(diffs["trait"]) == {"overconfident"} and set(diffs["vs"]) == {"easy-going"}
    d = {(r["item"], r["timing"]): r for r in diffs.to_dict("records")}
    assert d[("sure", "pre")]["difference"] == 4.0
    assert d[("sure", "post")]["difference"] == 0.0
    assert d[("open", "pre")]["difference"] == -3.0
    assert np.isnan(d[("open", "pre")]["p_welch"])  # no variance at all
    problems = a.questionnaire["problem"].value_counts().to_dict()
    assert problems == {"missing": 5}
    assert "manipulation_check" in a.tables() and "trait_differences" in a.tables()


def test_a_run_without_questionnaire_has_empty_tables(tmp_path: Path) -> None:
    exp = _exp()
    del exp["questionnaire"]
    _, summary = run(write(tmp_path, exp), tmp_path / "out")
    assert summary.made == 2 * 3 * 7
    a = load_run(tmp_path / "out")
    assert a.questionnaire.empty and a.manipulation_check.empty and a.trait_differences.empty
    assert "manipulation_check" not in a.tables()


def test_two_sample_bootstrap_brackets_the_difference() -> None:
    a, b = [5.0, 6.0, 7.0, 6.0], [2.0, 3.0, 2.0]
    low, high = bootstrap_diff_ci(a, b)
    assert low <= np.mean(a) - np.mean(b) <= high
    assert low >= 5.0 - 3.0 and high <= 7.0 - 2.0  # within the extremes a resample can reach
    assert bootstrap_diff_ci([4.0, 4.0], [1.0]) == (3.0, 3.0)
    assert np.isnan(bootstrap_diff_ci([], [1.0])[0])
    # the same draws for a as the one-sample interval makes, so b constant shifts it exactly
    assert bootstrap_diff_ci(a, [1.0]) == pytest.approx([v - 1.0 for v in bootstrap_ci(a)])


# -- the simulated model ---------------------------------------------------------------------
def test_the_sim_rates_by_trait_deterministically(tmp_path: Path) -> None:
    exp = _exp()
    exp["task"]["cases"] = 6
    exp["societies"] = [{"name": "s", "agents": ["easy-going"] * 3 + ["overconfident"] * 3}]
    run(write(tmp_path, exp), tmp_path / "a")
    run(write(tmp_path, exp), tmp_path / "b")
    a, b = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    assert a.questionnaire["value"].equals(b.questionnaire["value"])
    t = a.manipulation_check.set_index(["item", "trait", "timing"])["mean"]
    for timing in ("pre", "post"):
        # conformity 0.8 / 0.25: 'sure' (1-7) about 2.2 / 5.5, 'open' (1-5) about 4.2 / 2.0
        assert t[("sure", "overconfident", timing)] > t[("sure", "easy-going", timing)] + 2
        assert t[("open", "easy-going", timing)] > t[("open", "overconfident", timing)] + 1
    assert a.questionnaire["value"].dropna().between(1, 7).all()
    assert set(a.questionnaire["value"].dropna()) > {1.0, 2.0, 3.0}  # noise spreads them


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("questionnaire:\n  items:\n    - id: conf\n      text: How sure are you?\n",
         "quickstart.yaml:17: questionnaire.items[0].scale: required field is missing"),
        ("questionnaire:\n  items:\n    - id: conf\n      text: How sure?\n"
         "      scale: {min: 7, max: 7}\n",
         "quickstart.yaml:19: questionnaire.items[0].scale: min (7) must be below max (7)"),
        ("questionnaire:\n  items: []\n",
         "quickstart.yaml:16: questionnaire.items: list at least one item"),
        ("questionnaire: standrd\n", "quickstart.yaml:15: questionnaire: Input should be"),
        ("questionnaire:\n  items:\n    - {id: a, text: x, scale: {min: 1, max: 5, "
         "anchors: {6: top}}}\n",
         "quickstart.yaml:17: questionnaire.items[0].scale: anchor 6 is outside the scale 1-5"),
        ("patterns:\n  odd: {code: '^', sees_peers: true}\nquestionnaire: standard\n",
         "quickstart.yaml:16: patterns.odd.code: '^' is reserved for the questionnaire"),
    ],
)  # fmt: skip
def test_bad_questionnaire_is_one_clear_line(tmp_path: Path, extra: str, expected: str) -> None:
    code, stderr, out = run_cli(tmp_path, GOOD + extra)
    assert_one_line(code, stderr, out, expected)


# -- the example ------------------------------------------------------------------------------
def test_the_example_runs_with_limit_and_shows_the_check(tmp_path: Path) -> None:
    example = REPO / "experiments" / "modern" / "manipulation-check.yaml"
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(example), "--out", str(out), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "manipulation check" in result.output
    assert "confident (pre): overconfident - easy-going = +" in result.output
    dry = CliRunner().invoke(
        cli, ["run", str(example), "--out", str(tmp_path / "dry"), "--limit", "2", "--dry-run"]
    )
    # 2 cases x 3 repeats x 4 societies x 3 agents x (1 persona + 7 nodes + 1 + 2 leaves)
    assert "calls: 792 to make" in dry.output, dry.output


# -- the report ------------------------------------------------------------------------------
def test_the_report_section_renders_in_headless_chromium(tmp_path: Path) -> None:
    from societies.report.render import write_report
    from tests.cdp import find_chromium, open_page

    run(write(tmp_path, _exp()), tmp_path / "out", same_backend(FunctionModel(_by_trait)))
    report = write_report(load_run(tmp_path / "out"), tmp_path / "report.html")
    html = report.read_text(encoding="utf-8")
    assert html.count('id="pack-manipulation-check"') == 1
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    with open_page(chromium, tmp_path / "profile", report.as_uri()) as page:
        section = page.evaluate(
            "(function () { var s = document.getElementById('pack-manipulation-check');"
            " s.scrollIntoView(); var r = s.getBoundingClientRect();"
            " return [s.innerText, r.height, s.querySelectorAll('tbody tr').length]; })()"
        )
        text, height, rows = section
        assert "Manipulation check" in text and height > 100
        assert "+4.000 [+4.000, +4.000]" in text  # 'sure' before: overconfident - easy-going
        assert rows == 4 + 4  # 2 items x 2 traits, then 2 items x 2 timings
        assert "6.00 [6.00, 6.00]" in text and "3.50 [3.50, 3.50]" in text
        # The transcript browser shows each agent's answer at a leaf, not its questionnaire.
        shown = page.evaluate(
            """(function () {
                function pick(id, value) {
                  var s = document.getElementById(id); s.value = value;
                  s.dispatchEvent(new Event('change'));
                }
                pick('sel-case', 'qs-01'); pick('sel-society', 's'); pick('sel-strategy', '01');
                var t = document.getElementById('transcript');
                return [t.getAttribute('data-calls-shown'), t.innerText];
            })()"""
        )
        assert shown[0] == "9" and "(A)" in shown[1]
        assert "questions about yourself" not in shown[1] and "/5" not in shown[1]
        page.screenshot(tmp_path / "manipulation-check.png")
        assert page.errors() == []


@pytest.mark.parametrize("prompts", ["default", "machinesom"])
def test_the_estimate_counts_questionnaire_tokens_exactly(tmp_path: Path, prompts: str) -> None:
    """The dry run's calls and tokens equal what the run sends (replies of a fixed length)."""
    import asyncio

    from societies.scheduler.session import run_experiment
    from tests.test_estimate import REPLY, Filler, measured

    exp = _exp(prompts=prompts, model={"backend": "sim", "params": {"max_tokens": REPLY}})
    plan = load_plan(write(tmp_path, exp), Overrides(out=tmp_path / "run"))
    est = estimate_plan(plan)
    asyncio.run(run_experiment(plan, backend_factory=lambda spec: Filler(spec), argv=["t"]))
    assert measured(tmp_path / "run") == (est.calls, est.prompt_tokens, est.completion_tokens)
    assert est.calls == 2 * 3 * ((prompts == "machinesom") + 7 + 5)


# -- a real backend --------------------------------------------------------------------------
async def test_the_openai_backend_over_http_asks_and_serve_sim_rates_by_trait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real client over real HTTP (serve-sim on 127.0.0.1): the questionnaire is a call
    like any other, and serve-sim rates it as the sim does."""
    from societies.backends.sim_server import SimServer
    from societies.scheduler.session import run_experiment
    from tests.backend_helpers import write_experiment

    monkeypatch.setenv("SOCIETIES_TEST_KEY", "sk-test")
    experiment = write_experiment(
        tmp_path, cases=4, easy_going=[3, 0], extra={"questionnaire": "standard"}
    )
    async with SimServer(experiments=[experiment]) as server:
        options = {"base_url": server.base_url, "api_key_env": "SOCIETIES_TEST_KEY"}
        plan = load_plan(
            experiment,
            Overrides(out=tmp_path / "out", model="openai:sim-model", model_options=options),
        )
        summary = await run_experiment(plan)
    assert summary.made == 4 * 2 * 3 * (1 + 7 + 1 + 4) and summary.errors == 0
    a = load_run(tmp_path / "out")
    assert a.questionnaire["value"].notna().mean() > 0.9
    d = a.trait_differences.set_index(["item", "timing"])["difference"]
    assert d[("confident", "pre")] > 1.5 and d[("persuadable", "post")] < -1.5


async def test_batch_mode_asks_the_questionnaire_as_the_interactive_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch mode (the OpenAI Batch API against serve-sim): the pre questionnaire leaves with
    the first answers, the post one as a level of its own after the last round."""
    from societies.backends.sim_server import Faults, SimServer
    from societies.scheduler.batch_live import run_batched
    from societies.scheduler.session import open_store, run_experiment
    from tests.backend_helpers import answers, asked, write_experiment

    monkeypatch.setenv("SOCIETIES_TEST_KEY", "sk-test")
    exp = write_experiment(tmp_path, extra={"questionnaire": "standard"})

    def overrides(out: Path, server: SimServer, **more: Any) -> Overrides:
        options = {"base_url": server.base_url, "api_key_env": "SOCIETIES_TEST_KEY", **more}
        return Overrides(out=out, model="openai:sim-model", model_options=options)

    async with SimServer(Faults(batch_delay=0.02), experiments=[exp]) as server:
        await run_experiment(load_plan(exp, overrides(tmp_path / "interactive", server)))
        plan = load_plan(exp, overrides(tmp_path / "batch", server, batch=True, batch_poll=0.01))
        store = open_store(plan)
        try:
            summary = await run_batched(plan, store)
        finally:
            store.close()
        stats = dict(server.stats)
    assert summary.made == 3 * 3 * (1 + 7 + 1 + 4) and summary.errors == 0
    assert stats["batches"] == 5  # role-play; first answers + pre; round 1; round 2; post
    assert answers(tmp_path / "batch") == answers(tmp_path / "interactive")
    assert asked(tmp_path / "batch") == asked(tmp_path / "interactive")
    keys = ["repeat", "case_id", "society", "agent", "node", "item"]
    a, b = (
        load_run(tmp_path / d).questionnaire.sort_values(keys, ignore_index=True)
        for d in ("batch", "interactive")
    )
    assert a["value"].notna().sum() > 150  # of 180 ratings
    assert a[[*keys, "value"]].equals(b[[*keys, "value"]])
