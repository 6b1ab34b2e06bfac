// The live run view: Server-Sent Events from the console (harness/console/live.py) drawn into the
// page. Plain JavaScript, nothing fetched from elsewhere. Every coloured state also has words.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const root = $("live");
  if (!root) return;
  // Read by the browser test: when each phase first showed, and how far the page lagged behind
  // the history event that caused each phase change.
  const probe = window.gamedayConsole = { shown: {}, lags: [], messages: 0, verdict: null };
  const COLOURS = { ok: "#2da44e", fail: "#cf222e", info: "#d4a72c", ack: "#0969da", lat: "#8250df",
                    fault: "#fb8f44", recovery: "#54aeff", muted: "#59636e", grid: "#d1d9e0" };
  const STATE_WORDS = { running: "now", done: "done", failed: "failed" };
  const STATE_MARKS = { running: "▶", done: "✓", failed: "✗" };
  let bins = new Map(), windows = [], probeName = "api", runUrl = null, drawPending = false;

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function fmtS(s) {
    if (s == null || !isFinite(s)) return "—";
    return s < 10 ? s.toFixed(2) + " s" : s < 60 ? s.toFixed(1) + " s" : Math.floor(s / 60) + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";
  }
  function setStatus(word, cls) {
    const el = $("status");
    el.textContent = word.toUpperCase();
    el.className = "badge badge-" + cls;
  }
  function reset() {
    bins = new Map(); windows = [];
    for (const id of ["steps", "criteria", "log"]) $(id).innerHTML = "";
    $("alerts").innerHTML = '<li class="muted">none yet</li>';
    $("verdict").hidden = true;
    for (const id of ["acked", "failed", "in-doubt"]) $(id).textContent = "0";
    $("rate").textContent = "—"; $("latency").textContent = "—"; $("phase-line").textContent = "—";
    probe.shown = {}; probe.verdict = null;
    scheduleDraw();
  }

  const handlers = {
    run(d) {
      if (runUrl !== null && runUrl !== d.url) reset();
      runUrl = d.url; probeName = d.probe;
      $("scenario").textContent = d.scenario;
      $("title").textContent = d.title;
      $("started").textContent = "started " + d.started;
      $("links").innerHTML = d.url ? '<a href="' + esc(d.url) + '">this run</a>' : "";
      $("description").textContent = [d.description, d.bcp_section].filter(Boolean).join(" — ");
      $("objectives").innerHTML = d.objectives.map((w) => "<li>" + esc(w) + "</li>").join("");
      for (const el of document.querySelectorAll(".probe-name")) el.textContent = d.probe;
      setStatus("running", "running");
    },
    steps(d) {
      $("steps").innerHTML = d.steps.map((s) =>
        '<li class="step-' + esc(s.state) + '"><span class="state" aria-hidden="true">' + STATE_MARKS[s.state] +
        '</span><span class="sr">' + STATE_WORDS[s.state] + ": </span>" + esc(s.label) + "</li>").join("");
      const now = Date.now();
      for (const s of d.steps) if (!(s.key in probe.shown)) probe.shown[s.key] = now;
      if (d.wall && d.live) {
        const lag = now - Date.parse(d.wall);
        probe.lags.push({ news: d.news.join("; "), ms: lag });
        $("lag").textContent = "page " + (lag / 1000).toFixed(2) + " s behind the last phase event";
      }
      for (const n of d.news) addLog(null, "phase", n, null);
    },
    line(d) { $("phase-line").textContent = d.words; },
    bins(d) {
      for (const b of d.bins) bins.set(b[0], b.slice(1));
      scheduleDraw();
      updateCards();
    },
    windows(d) { windows = d.windows; scheduleDraw(); },
    writes(d) {
      $("acked").textContent = d.acked.toLocaleString("en");
      $("failed").textContent = d.failed.toLocaleString("en");
      $("in-doubt").textContent = d.in_doubt.toLocaleString("en");
    },
    alert(d) {
      const list = $("alerts");
      if (list.querySelector(".muted")) list.innerHTML = "";
      const li = document.createElement("li");
      const firing = d.status === "firing";
      li.innerHTML = '<b class="' + (firing ? "bad" : "ok") + '">' + esc(String(d.status).toUpperCase()) + "</b> " +
        esc(d.name) + ' <span class="muted small">' + esc(d.when) + " · " + esc(d.source) + "</span>";
      list.appendChild(li);
    },
    log(d) { addLog(d.t, d.kind, (d.name ? d.name + " " : "") + d.words, d.ok); },
    verdict(d) {
      probe.verdict = d.status;
      setStatus(d.status, d.status);
      $("verdict").hidden = false;
      const vs = $("verdict-status");
      vs.textContent = d.status.toUpperCase();
      vs.className = "badge badge-" + d.status;
      $("verdict-reason").textContent = d.reason;
      $("criteria").innerHTML = d.criteria.map((c) => {
        const word = c.passed === true ? "passed" : c.passed === false ? "FAILED" : "unknown";
        const cls = c.passed === true ? "ok" : c.passed === false ? "bad" : "warn";
        return "<tr><td><b>" + esc(c.title) + "</b>" + (c.bcp ? '<br><span class="muted small">' + esc(c.bcp) + "</span>" : "") +
          '</td><td class="nowrap"><span class="' + cls + '">' + (c.passed === true ? "✓ " : c.passed === false ? "✗ " : "? ") + word +
          '</span></td><td class="num">' + esc(c.measured) + '</td><td class="num">' + esc(c.objective) +
          "</td><td>" + esc(c.detail) + "</td></tr>";
      }).join("");
      if (d.report) $("links").innerHTML += ' · <a href="' + esc(d.report) + '">the full report</a>';
    },
    gameday(d) {
      $("gameday").hidden = false;
      $("gameday-progress").textContent = d.done + " / " + d.total + " scenarios done";
      $("gameday-time").textContent = "elapsed " + d.elapsed + (d.left ? " · about " + d.left + " left" : "");
      $("gameday-calibration").textContent = d.calibration || "";
      $("gameday-budget").textContent = d.budget || "";
      $("gameday-rows").innerHTML = d.rows.map((r) =>
        "<tr><td><b>" + esc(r.scenario) + "</b>" + (r.calibration ? " (calibration)" : "") + '</td><td><span class="badge badge-' +
        esc(r.status) + '">' + esc(r.status.toUpperCase()) + '</span></td><td class="num">' + esc(r.rto) + "</td><td>" +
        r.criteria.map((c) => '<span class="mark ' + (c.passed ? "mark-ok" : "mark-bad") + '" title="' + esc(c.name) + '">' +
          (c.passed ? "✓" : "✗") + '<span class="sr">' + esc(c.name) + (c.passed ? " passed" : " failed") + "</span></span>").join("") +
        "</td><td>" + (r.report ? '<a href="' + esc(r.report) + '">report</a>' : '<span class="muted">running</span>') + "</td></tr>").join("");
    },
    abort(d) { $("abort-state").textContent = d.words; },
    idle(d) {
      setStatus("idle", "interrupted");
      $("phase-line").textContent = d.words;
    },
  };

  function addLog(t, kind, words, ok) {
    const li = document.createElement("li");
    const mark = ok === false ? '<b class="bad">failed</b> ' : "";
    li.innerHTML = '<span class="t">' + (t == null ? "" : "+" + Number(t).toFixed(1) + " s") + "</span> " + mark +
      "<b>" + esc(kind) + "</b> " + esc(words);
    $("log").appendChild(li);
  }

  function recent(seconds) {
    let last = -Infinity;
    for (const k of bins.keys()) last = Math.max(last, k);
    const out = [];
    for (const [k, b] of bins) if (k > last - seconds) out.push(b);
    return out;
  }
  function updateCards() {
    const r = recent(5);
    const ok = r.reduce((a, b) => a + b[0], 0), fail = r.reduce((a, b) => a + b[1], 0);
    if (ok + fail) {
      const pct = 100 * ok / (ok + fail);
      $("rate").innerHTML = '<span class="' + (fail ? "bad" : "ok") + '">' + pct.toFixed(0) + " %</span>";
      $("rate-sub").textContent = ok + " answered, " + fail + " failed";
    }
    const lats = r.map((b) => b[2]).filter((x) => x != null);
    $("latency").textContent = lats.length ? fmtS(Math.max(...lats)) : "no answer";
  }

  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    setTimeout(() => { drawPending = false; draw(); }, 200);
  }
  function niceCeil(x) {
    if (!(x > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(x)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
    return 10 * p;
  }
  function draw() {
    const W = 1200, ML = 70, MR = 16, PW = W - ML - MR;
    const lanes = { rate: [30, 80], lat: [125, 75], wr: [220, 75] };
    let tMax = 20;
    for (const k of bins.keys()) tMax = Math.max(tMax, k + 1);
    for (const w of windows) tMax = Math.max(tMax, (w.end || w.start) + 1);
    let tData = 0;  // where the data ends: a window still open is drawn up to there
    for (const k of bins.keys()) tData = Math.max(tData, k + 1);
    const x = (t) => ML + Math.max(0, Math.min(t, tMax)) / tMax * PW;
    const bw = Math.max(1, PW / tMax - 1);
    const parts = [];
    for (const w of windows) {
      const x0 = x(w.start), x1 = w.end == null ? Math.max(x(tData), x0 + 2) : Math.max(x(w.end), x0 + 2);
      parts.push('<rect x="' + x0 + '" y="22" width="' + (x1 - x0) + '" height="280" fill="' + COLOURS[w.kind] + '" opacity=".28"/>');
      parts.push('<text x="' + (x0 + 3) + '" y="16">' + esc(w.kind + ": " + w.name) + "</text>");
    }
    const label = (y, words) => '<text x="4" y="' + y + '">' + esc(words) + "</text>";
    parts.push(label(lanes.rate[0] + 12, probeName + " ok"), label(lanes.lat[0] + 12, "latency"), label(lanes.wr[0] + 12, "writes/s"));
    let latMax = 0, wrMax = 0;
    for (const b of bins.values()) { latMax = Math.max(latMax, b[2] || 0); wrMax = Math.max(wrMax, b[3] + b[4] + b[5]); }
    latMax = niceCeil(latMax); wrMax = niceCeil(wrMax);
    parts.push(label(lanes.lat[0] + 28, fmtS(latMax)), label(lanes.wr[0] + 28, String(wrMax)));
    const latPts = [];
    const keys = [...bins.keys()].sort((a, b) => a - b);
    for (const k of keys) {
      const [ok, fail, lat, ack, wfail, info] = bins.get(k);
      const x0 = x(k);
      if (ok + fail) {
        const [top, h] = lanes.rate, okH = h * ok / (ok + fail);
        if (okH > 0) parts.push('<rect x="' + x0 + '" y="' + (top + h - okH) + '" width="' + bw + '" height="' + okH + '" fill="' + COLOURS.ok + '"/>');
        if (fail) parts.push('<rect x="' + x0 + '" y="' + top + '" width="' + bw + '" height="' + (h - okH) + '" fill="' + COLOURS.fail + '"/>');
      }
      // A second without an answer breaks the line: there was no latency to draw.
      if (lat != null && bins.has(k - 1) && bins.get(k - 1)[2] == null && latPts.length) latPts.push(null);
      if (lat != null) latPts.push((x0 + bw / 2) + "," + (lanes.lat[0] + lanes.lat[1] * (1 - lat / latMax)));
      let y = lanes.wr[0] + lanes.wr[1];
      for (const [n, c] of [[ack, COLOURS.ack], [wfail, COLOURS.fail], [info, COLOURS.info]]) {
        if (!n) continue;
        const h = lanes.wr[1] * n / wrMax;
        y -= h;
        parts.push('<rect x="' + x0 + '" y="' + y + '" width="' + bw + '" height="' + h + '" fill="' + c + '"/>');
      }
    }
    let run = [];
    for (const p of [...latPts, null]) {
      if (p !== null) { run.push(p); continue; }
      if (run.length) parts.push('<polyline fill="none" stroke="' + COLOURS.lat + '" stroke-width="2" points="' + (run.length > 1 ? run.join(" ") : run[0] + " " + run[0]) + '"/>');
      run = [];
    }
    for (const [top, h] of Object.values(lanes)) parts.push('<line x1="' + ML + '" x2="' + (W - MR) + '" y1="' + (top + h) + '" y2="' + (top + h) + '" stroke="' + COLOURS.grid + '"/>');
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => tMax / s <= 12) || 900;
    for (let t = 0; t <= tMax; t += step) {
      parts.push('<line x1="' + x(t) + '" x2="' + x(t) + '" y1="300" y2="306" stroke="' + COLOURS.muted + '"/>');
      parts.push('<text x="' + x(t) + '" y="322" text-anchor="middle">' + Math.floor(t / 60) + ":" + String(t % 60).padStart(2, "0") + "</text>");
    }
    $("chart").innerHTML = parts.join("");
  }

  const source = new EventSource(root.dataset.events);
  for (const name of Object.keys(handlers)) {
    source.addEventListener(name, (e) => {
      probe.messages += 1;
      handlers[name](JSON.parse(e.data));
    });
  }
  source.onerror = () => { if (!probe.verdict) setStatus("reconnecting", "error"); };
  source.onopen = () => { if ($("status").textContent === "RECONNECTING" || $("status").textContent === "CONNECTING") setStatus("waiting", "running"); };

  // With the script on, the abort is sent without leaving the page (the stream shows its end).
  const form = $("abort-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    $("abort-state").textContent = "sending the abort…";
    try {
      const r = await fetch("/abort", { method: "POST", body: new URLSearchParams(new FormData(form)),
                                       headers: { Accept: "application/json" },
                                       credentials: "same-origin" });
      const d = await r.json().catch(() => ({ words: "HTTP " + r.status }));
      $("abort-state").textContent = d.words || ("HTTP " + r.status);
      $("abort-details").open = false;
    } catch (err) {
      $("abort-state").textContent = "the abort could not be sent: " + err;
    }
  });
})();
