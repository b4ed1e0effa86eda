// societies view: runs list, run page (Table 2, figures), transcript browser. Plain JS, no build.
"use strict";

var timer = null;
var LIST_KEYS = ["q", "f", "repeat", "case", "society", "strategy"];

function el(tag, attrs) {
  var node = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    var v = attrs[k];
    if (v === null || v === undefined || v === false) return;
    if (k === "text") node.textContent = v;
    else if (k === "on") Object.keys(v).forEach(function (e) { node.addEventListener(e, v[e]); });
    else node.setAttribute(k, v === true ? "" : v);
  });
  for (var i = 2; i < arguments.length; i++) {
    var c = arguments[i];
    if (c === null || c === undefined) continue;
    (Array.isArray(c) ? c : [c]).forEach(function (x) {
      node.appendChild(typeof x === "string" || typeof x === "number" ? document.createTextNode(String(x)) : x);
    });
  }
  return node;
}

function api(path) {
  return fetch(path).then(function (r) {
    if (!r.ok) return r.text().then(function (t) { throw new Error(t || r.statusText); });
    return r.json();
  });
}

function fmtInt(n) { return n === null || n === undefined ? "…" : Number(n).toLocaleString("en-US"); }
function fmtUsd(c) { return !c ? "…" : c.usd === null ? "a model has no price" : "$" + c.usd.toFixed(4); }
function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1); }

function statusBadge(run) {
  return el("span", { "class": "status " + run.status, title: run.why || "", "data-status": run.status }, run.status);
}

function setMain() {
  var main = document.getElementById("main");
  main.textContent = "";
  for (var i = 0; i < arguments.length; i++) if (arguments[i]) main.appendChild(arguments[i]);
  return main;
}

function crumbs(parts) {
  var c = document.getElementById("crumbs");
  c.textContent = "";
  parts.forEach(function (p) { c.appendChild(document.createTextNode(" › ")); c.appendChild(p); });
}

function poll(fn, ms) {
  fn();
  timer = setInterval(fn, ms);
}

function showError(err) {
  setMain(el("p", { "class": "banner" }, "Error: " + err.message));
}

// -- runs list ---------------------------------------------------------------------------
function runsPage() {
  crumbs([]);
  var body = el("tbody");
  var table = el("table", { id: "runs" },
    el("thead", {}, el("tr", {}, ["run", "task", "models", "societies", "calls done / planned",
      "status", "tokens", "cost"].map(function (h) { return el("th", {}, h); }))), body);
  setMain(el("h2", {}, "Runs"), table,
    el("p", { "class": "muted" }, "Refreshed every 2 s; a running run's status turns to done when it finishes."));
  poll(function () {
    api("/api/runs").then(function (data) {
      body.textContent = "";
      if (!data.runs.length) body.appendChild(el("tr", {}, el("td", { colspan: 8 }, "No run stores found.")));
      data.runs.forEach(function (r) {
        if (r.status === "unreadable") {
          body.appendChild(el("tr", {}, el("td", {}, r.path), el("td", { colspan: 4 }, r.why),
            el("td", {}, statusBadge(r)), el("td", {}), el("td", {})));
          return;
        }
        var share = r.calls_planned ? Math.min(1, r.calls_done / r.calls_planned) : 0;
        body.appendChild(el("tr", { "data-run": r.id },
          el("td", {}, el("a", { href: "#/run/" + r.id, title: r.path }, r.name)),
          el("td", {}, r.task), el("td", {}, r.models.join(", ")),
          el("td", { title: r.societies.join(", ") }, String(r.societies.length)),
          el("td", { "class": "num" }, el("span", { "class": "bar" }, el("span", { style: "width:" + (100 * share).toFixed(1) + "%" })),
            fmtInt(r.calls_done) + " / " + fmtInt(r.calls_planned)),
          el("td", {}, statusBadge(r), r.why ? el("div", { "class": "muted" }, r.why) : null),
          el("td", { "class": "num" }, fmtInt(r.cost && r.cost.tokens)),
          el("td", { "class": "num" }, fmtUsd(r.cost))));
      });
      document.getElementById("live").textContent = "updated " + new Date().toLocaleTimeString();
    }).catch(showError);
  }, 2000);
}

// -- run page ----------------------------------------------------------------------------
function runSummary(run) {
  return el("div", { id: "summary" },
    el("h2", {}, run.name + " "), statusBadge(run), " ",
    el("span", { "class": "muted" }, run.why || ""),
    el("table", {}, el("tbody", {},
      [["task", run.task], ["prompt set", run.prompts], ["models", run.models.join(", ")],
       ["societies", run.societies.join(", ")],
       ["calls", fmtInt(run.calls_done) + " of " + fmtInt(run.calls_planned) + " planned"],
       ["outcomes", run.outcomes ? Object.keys(run.outcomes).map(function (k) { return k + " " + fmtInt(run.outcomes[k]); }).join(", ") : "…"],
       ["tokens billed", fmtInt(run.cost && run.cost.tokens)],
       ["cost", fmtUsd(run.cost)],
       ["directory", run.path]].map(function (kv) { return el("tr", {}, el("th", {}, kv[0]), el("td", {}, kv[1])); }))));
}

function sortable(table, rows, columns, render) {
  var state = { key: null, dir: 1 };
  var body = el("tbody");
  function draw() {
    var sorted = rows.slice();
    if (state.key) {
      var col = columns.filter(function (c) { return c.key === state.key; })[0];
      sorted.sort(function (a, b) {
        var x = col.value(a), y = col.value(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * state.dir;
      });
    }
    body.textContent = "";
    sorted.forEach(function (r) { body.appendChild(render(r)); });
  }
  table.appendChild(el("thead", {}, el("tr", {}, columns.map(function (c) {
    return el("th", { "class": "sortable", title: "sort", on: { click: function () {
      state.dir = state.key === c.key ? -state.dir : 1; state.key = c.key; draw();
    } } }, c.label);
  }))));
  table.appendChild(body);
  draw();
}

function table2(data) {
  // Rows: strategy; columns: society (one order everywhere: the experiment's); sortable.
  var societies = data.societies;
  var byStrategy = {};
  data.table2.forEach(function (c) {
    var row = byStrategy[c.strategy] = byStrategy[c.strategy] || { strategy: c.strategy, cells: {}, W: c.W, W_of: c.W_of };
    row.cells[c.society] = c;
  });
  var rows = Object.keys(byStrategy).sort().map(function (k) { return byStrategy[k]; });
  var columns = [{ key: "strategy", label: "strategy", value: function (r) { return r.strategy; } }];
  societies.forEach(function (s) {
    columns.push({ key: "s:" + s, label: s, value: function (r) { return r.cells[s] ? r.cells[s].mean : null; } });
  });
  columns.push({ key: "W", label: "W", value: function (r) { return r.W; } });
  var table = el("table", { id: "table2" });
  sortable(table, rows, columns, function (r) {
    return el("tr", {}, el("td", {}, r.strategy), societies.map(function (s) {
      var c = r.cells[s];
      if (!c) return el("td", { "class": "num" }, "–");
      var cls = "num " + (c.mark || "") + (c.incomplete ? " incomplete-cell" : "");
      return el("td", { "class": cls, title: "n = " + c.n + " of " + c.planned + " society answers" + (c.incomplete ? " (incomplete)" : "") },
        pct(c.mean) + " ± " + pct(c.std), el("div", { "class": "muted" }, "n " + c.n + (c.incomplete ? " / " + c.planned : "")));
    }), el("td", { "class": "num" }, r.W === null ? "–" : r.W + "/" + r.W_of));
  });
  return table;
}

function runPage(rid) {
  var summary = el("div");
  var tables = el("div", {}, el("p", { "class": "muted", id: "tables-wait" }, "Computing Table 2 and figures…"));
  var link = el("p", {}, el("a", { href: "#/run/" + rid + "/transcripts", id: "to-transcripts" }, "Browse transcripts →"));
  setMain(summary, link, tables);
  var last = null, loading = false, loadedAt = 0;
  poll(function () {
    api("/api/runs/" + rid).then(function (run) {
      crumbs([el("a", { href: "#/run/" + rid }, run.name)]);
      summary.textContent = "";
      summary.appendChild(runSummary(run));
      // While a run writes, recompute the analysis at most every 30 s and one at a time.
      var marker = run.calls_done + "|" + run.status;
      var due = run.status !== "running" || Date.now() - loadedAt > 30000;
      if (marker !== last && !loading && due) {
        last = marker; loading = true; loadedAt = Date.now();
        loadTables(rid, tables, run).then(function () { loading = false; });
      }
    }).catch(showError);
  }, 3000);
}

function loadTables(rid, box, run) {
  return api("/api/runs/" + rid + "/tables").then(function (data) {
    box.textContent = "";
    if (data.error) { box.appendChild(el("p", { "class": "muted" }, "No tables yet: " + data.error)); return; }
    var incomplete = data.table2.filter(function (c) { return c.incomplete; }).length;
    if (incomplete || run.status !== "done")
      box.appendChild(el("div", { "class": "banner", id: "incomplete" },
        "This run is " + run.status + (run.why ? " (" + run.why + ")" : "") + ": " + incomplete +
        " of " + data.table2.length + " cells have fewer society answers than planned (dashed outline; n in each cell)."));
    box.appendChild(el("h2", {}, "Table 2: last-round accuracy (%)"));
    box.appendChild(el("p", { "class": "muted" }, "Mean ± std over repeats; n = complete society answers in the cell. Click a header to sort. ",
      el("span", { "class": "best" }, "best"), " ", el("span", { "class": "second" }, "second"), " ", el("span", { "class": "worst" }, "worst"), " per society."));
    box.appendChild(el("div", { "class": "tscroll" }, table2(data)));
    box.appendChild(el("h2", {}, "Figures"));
    box.appendChild(el("div", { "class": "figs" }, data.figures.map(function (name) {
      return el("figure", {}, el("img", { src: "/api/runs/" + rid + "/figures/" + name + ".png?v=" + encodeURIComponent(run.calls_done), alt: name }),
        el("figcaption", {}, name.replace(/_/g, " ")));
    })));
  }).catch(function (err) { box.textContent = "Tables failed: " + err.message; });
}

// -- transcript list ---------------------------------------------------------------------
function listParams(params) {
  var out = new URLSearchParams();
  LIST_KEYS.forEach(function (k) { if (params.get(k)) out.set(k, params.get(k)); });
  return out;
}

function refHash(rid, ref, params, index) {
  var p = listParams(params);
  p.set("t_repeat", ref.repeat); p.set("t_case", ref.case_id);
  p.set("t_society", ref.society); p.set("t_strategy", ref.strategy);
  if (index !== null && index !== undefined) p.set("i", index);
  return "#/run/" + rid + "/t?" + p.toString();
}

function listPage(rid, params) {
  var offset = parseInt(params.get("offset") || "0", 10);
  api("/api/runs/" + rid).then(function (run) {
    crumbs([el("a", { href: "#/run/" + rid }, run.name), el("a", { href: "#/run/" + rid + "/transcripts" }, "transcripts")]);
    var search = el("input", { type: "search", id: "search", placeholder: "search replies and questions", value: params.get("q") || "" });
    var active = (params.get("f") || "").split(",").filter(Boolean);
    var boxes = Object.keys(run.filters).map(function (name) {
      return el("label", { title: run.filters[name] }, el("input", { type: "checkbox", "data-filter": name, checked: active.indexOf(name) >= 0 }), " " + name);
    });
    function select(key, values) {
      return el("label", {}, key + " ", el("select", { "data-key": key }, el("option", { value: "" }, "all"),
        values.map(function (v) { return el("option", { value: v, selected: String(v) === params.get(key) }, String(v)); })));
    }
    var caseBox = el("input", { type: "text", "data-key": "case", placeholder: "case id", value: params.get("case") || "", size: 10 });
    function apply() {
      var p = new URLSearchParams();
      if (search.value) p.set("q", search.value);
      var f = boxes.map(function (b) { return b.firstChild; }).filter(function (c) { return c.checked; }).map(function (c) { return c.getAttribute("data-filter"); });
      if (f.length) p.set("f", f.join(","));
      document.querySelectorAll("select[data-key]").forEach(function (s) { if (s.value) p.set(s.getAttribute("data-key"), s.value); });
      if (caseBox.value) p.set("case", caseBox.value);
      location.hash = "#/run/" + rid + "/transcripts?" + p.toString();
    }
    var form = el("form", { "class": "controls", id: "list-controls", on: { submit: function (e) { e.preventDefault(); apply(); } } },
      search, el("button", { type: "submit" }, "Search"), boxes,
      select("repeat", run.choices.repeat), select("society", run.choices.society), select("strategy", run.choices.strategy),
      el("label", {}, "case ", caseBox));
    form.addEventListener("change", function (e) { if (e.target !== search && e.target !== caseBox) apply(); });
    var count = el("span", { id: "count", "class": "muted" }, "counting…");
    var body = el("tbody");
    var pager = el("div", { "class": "pager" });
    setMain(el("h2", {}, "Transcripts"), form, el("p", {}, count), pager,
      el("table", { id: "list" }, el("thead", {}, el("tr", {}, ["#", "repeat", "case", "society", "strategy", "last round correct", "last answers"].map(function (h) { return el("th", {}, h); }))), body));
    var query = listParams(params);
    var started = performance.now();
    api("/api/runs/" + rid + "/transcripts?" + query.toString() + "&offset=" + offset).then(function (page) {
      document.body.setAttribute("data-first-page-ms", String(Math.round(performance.now() - started)));
      if (!page.items.length) body.appendChild(el("tr", {}, el("td", { colspan: 7 }, "No transcript matches.")));
      page.items.forEach(function (ref, k) {
        var i = offset + k;
        body.appendChild(el("tr", { "class": "item" }, el("td", { "class": "num" }, String(i + 1)), el("td", {}, String(ref.repeat)),
          el("td", {}, el("a", { href: refHash(rid, ref, params, i) }, ref.case_id)), el("td", {}, ref.society), el("td", {}, ref.strategy),
          el("td", { "class": "num" }, ref.correct + "/" + ref.answers.length),
          el("td", {}, ref.answers.map(function (a) { return a === null ? "∅" : a; }).join(" "),
            ref.problems.length ? el("span", { "class": "badge bad" }, ref.problems.join(", ")) : null)));
      });
      function go(o) { var p = listParams(params); p.set("offset", o); return "#/run/" + rid + "/transcripts?" + p.toString(); }
      if (offset > 0) pager.appendChild(el("a", { href: go(Math.max(0, offset - 50)), id: "prev-page" }, "← previous page"));
      pager.appendChild(el("span", { "class": "muted" }, "rows " + (offset + 1) + "–" + (offset + page.items.length)));
      if (page.more) pager.appendChild(el("a", { href: go(offset + 50), id: "next-page" }, "next page →"));
      document.body.setAttribute("data-list-ready", "1");
    }).catch(showError);
    api("/api/runs/" + rid + "/count?" + query.toString()).then(function (c) {
      count.textContent = fmtInt(c.count) + " transcripts match";
      count.setAttribute("data-count", c.count);
    }).catch(function (err) { count.textContent = "count failed: " + err.message; });
  }).catch(showError);
}

// -- transcript --------------------------------------------------------------------------
function questionBlock(fields) {
  var text = fields.question || fields.problem || fields.prompt || fields.text || fields.fen || "";
  var box = el("div", { "class": "question", id: "question" }, el("div", { "class": "q" }, String(text)));
  if (Array.isArray(fields.choices)) {
    box.appendChild(el("ol", { type: "A" }, fields.choices.map(function (c) { return el("li", {}, String(c)); })));
  }
  var shown = { question: 1, problem: 1, prompt: 1, text: 1, choices: 1 };
  var rest = Object.keys(fields).filter(function (k) { return !shown[k] && k !== "id"; });
  if (rest.length) box.appendChild(el("div", { "class": "muted" }, rest.map(function (k) {
    var v = fields[k];
    return el("span", { "class": k === "answer" ? "target" : "" }, k + ": " + (typeof v === "string" ? v : JSON.stringify(v)) + "   ");
  })));
  return box;
}

function turnBox(t, agent) {
  var answerBadge = t.step === "persona" ? null : el("span", { "class": "badge " + (t.correct === true ? "ok" : t.correct === false ? "bad" : "none") },
    t.answer === null ? "no answer" : "answer " + t.answer);
  var label = agent ? "agent " + t.agent + " · " + agent.name : "agent " + t.agent;
  var meta = agent ? [agent.trait, agent.role ? "role: " + agent.role : null, t.model].filter(Boolean).join(" · ") : t.model;
  return el("div", { "class": "turn", "data-step": t.step, "data-outcome": t.outcome },
    el("div", { "class": "ahead" }, label), el("div", { "class": "meta" }, meta),
    el("div", { "class": "meta" }, t.step + (t.pattern ? " · " + t.pattern : "") + " · " + t.tokens + " tokens"),
    t.outcome !== "ok" ? el("span", { "class": "badge bad" }, t.outcome + (t.error ? ": " + t.error : "")) : null,
    answerBadge,
    el("div", { "class": "reply" }, t.reply === null ? "(no reply)" : t.reply),
    t.system ? el("details", { "class": "prompt" }, el("summary", {}, "system prompt"), el("div", {}, t.system)) : null,
    t.prompt ? el("details", { "class": "prompt" }, el("summary", {}, "prompt"), el("div", {}, t.prompt)) : null);
}

function tally(turns) {
  var counts = {};
  turns.forEach(function (t) { if (t.step === "answer") { var a = t.answer === null ? "∅" : t.answer; counts[a] = (counts[a] || 0) + 1; } });
  return Object.keys(counts).map(function (a) { return a + "×" + counts[a]; }).join(", ");
}

function pane(tr, title) {
  var agents = {};
  tr.agents.forEach(function (a) { agents[a.agent] = a; });
  // Group turns by (round, step): every kind of turn renders, known or not.
  var groups = [], index = {};
  tr.turns.forEach(function (t) {
    var key = t.round + "|" + t.step;
    if (!(key in index)) { index[key] = groups.length; groups.push({ round: t.round, step: t.step, turns: [] }); }
    groups[index[key]].turns.push(t);
  });
  return el("div", { "class": "pane", "data-calls-shown": tr.turns.length },
    el("h3", {}, title),
    groups.map(function (g) {
      var patterns = g.turns.map(function (t) { return t.pattern; }).filter(Boolean);
      var head = "round " + g.round + " · " + g.step + (patterns.length ? " (" + Array.from(new Set(patterns)).join(", ") + ")" : "");
      var votes = tally(g.turns);
      return el("div", { "class": "round" }, el("div", { "class": "rhead" }, head, votes ? el("span", { "class": "muted" }, "  answers: " + votes) : null),
        el("div", { "class": "turns" }, g.turns.map(function (t) { return turnBox(t, agents[t.agent]); })));
    }));
}

function transcriptPage(rid, params) {
  var ref = { repeat: params.get("t_repeat"), case: params.get("t_case"), society: params.get("t_society"), strategy: params.get("t_strategy") };
  var vs = { run: params.get("vs_run") || rid, society: params.get("vs_society") || ref.society, strategy: params.get("vs_strategy") || ref.strategy };
  var comparing = params.get("vs_run") || params.get("vs_society") || params.get("vs_strategy");
  function q(r, x) { return "/api/runs/" + r + "/transcript?" + new URLSearchParams({ repeat: x.repeat, "case": x["case"], society: x.society, strategy: x.strategy }).toString(); }
  var i = params.get("i") === null ? null : parseInt(params.get("i"), 10);
  Promise.all([api("/api/runs/" + rid), api("/api/runs"), api(q(rid, ref))]).then(function (res) {
    var run = res[0], runs = res[1].runs.filter(function (r) { return r.status !== "unreadable"; }), tr = res[2];
    crumbs([el("a", { href: "#/run/" + rid }, run.name), el("a", { href: "#/run/" + rid + "/transcripts?" + listParams(params).toString() }, "transcripts"),
      el("span", {}, ref["case"])]);
    var nav = el("div", { "class": "pager", id: "transcript-nav" }, el("a", { href: "#/run/" + rid + "/transcripts?" + listParams(params).toString() }, "↑ list"));
    if (i !== null) {
      api("/api/runs/" + rid + "/transcripts?" + listParams(params).toString() + "&offset=" + Math.max(0, i - 1) + "&limit=3").then(function (page) {
        var items = page.items, at = i > 0 ? 1 : 0;
        if (at === 1) nav.appendChild(el("a", { href: refHash(rid, items[0], params, i - 1), id: "prev" }, "← previous"));
        nav.appendChild(el("span", { "class": "muted" }, "#" + (i + 1) + " in this list"));
        if (items[at + 1]) nav.appendChild(el("a", { href: refHash(rid, items[at + 1], params, i + 1), id: "next" }, "next →"));
      }).catch(showError);
    }
    function compareSelect(key, values, current) {
      return el("label", {}, key + " ", el("select", { "data-vs": key }, values.map(function (v) {
        var value = typeof v === "object" ? v.id : v, label = typeof v === "object" ? v.name : v;
        return el("option", { value: value, selected: value === current }, label);
      })));
    }
    var controls = el("div", { "class": "controls", id: "compare" }, el("strong", {}, "Side by side with:"),
      compareSelect("run", runs, vs.run), compareSelect("society", run.choices.society, vs.society),
      compareSelect("strategy", run.choices.strategy, vs.strategy),
      comparing ? el("a", { href: location.hash.replace(/&vs_[a-z]+=[^&]*/g, "") }, "close") : null);
    controls.addEventListener("change", function () {
      var p = new URLSearchParams(params.toString());
      controls.querySelectorAll("select[data-vs]").forEach(function (s) { p.set("vs_" + s.getAttribute("data-vs"), s.value); });
      location.hash = "#/run/" + rid + "/t?" + p.toString();
    });
    var title = run.name + " · " + ref.society + " · strategy " + ref.strategy + " · repeat " + ref.repeat;
    var panes = el("div", { "class": "panes", id: "panes" }, pane(tr, title));
    setMain(el("h2", {}, "Case " + ref["case"] + " (#" + tr.case_index + ")"), nav, questionBlock(tr.case_fields), controls, panes);
    document.getElementById("panes").firstChild.id = "transcript";
    if (comparing) {
      var other = { repeat: ref.repeat, "case": ref["case"], society: vs.society, strategy: vs.strategy };
      var otherRun = runs.filter(function (r) { return r.id === vs.run; })[0];
      api(q(vs.run, other)).then(function (tr2) {
        var p2 = pane(tr2, (otherRun ? otherRun.name : vs.run) + " · " + vs.society + " · strategy " + vs.strategy + " · repeat " + ref.repeat);
        p2.id = "compared";
        panes.appendChild(p2);
      }).catch(function (err) { panes.appendChild(el("div", { "class": "pane", id: "compared" }, "Not in that run: " + err.message)); });
    }
  }).catch(showError);
}

// -- router ------------------------------------------------------------------------------
function route() {
  if (timer) { clearInterval(timer); timer = null; }
  document.body.removeAttribute("data-list-ready");
  var hash = location.hash.replace(/^#/, "") || "/";
  var qpos = hash.indexOf("?");
  var path = qpos >= 0 ? hash.slice(0, qpos) : hash;
  var params = new URLSearchParams(qpos >= 0 ? hash.slice(qpos + 1) : "");
  var m;
  if ((m = path.match(/^\/run\/([0-9a-f]+)\/transcripts$/))) listPage(m[1], params);
  else if ((m = path.match(/^\/run\/([0-9a-f]+)\/t$/))) transcriptPage(m[1], params);
  else if ((m = path.match(/^\/run\/([0-9a-f]+)$/))) runPage(m[1]);
  else runsPage();
  window.scrollTo(0, 0);
}

window.addEventListener("hashchange", route);
route();
