// cesi-like console: the little behaviour pages need, with no inline script anywhere (the
// Content-Security-Policy forbids it). Three parts, each driven by data- attributes:
//  - form[data-confirm]: ask before a destructive POST; the text is an attribute, never code.
//  - [data-live]: re-fetch this fragment every data-interval ms, with If-None-Match, and swap
//    it in only when the server says it changed (304 otherwise). Paused while the tab is hidden.
//  - [data-log]: follow a process log through the JSON API by offset, append as plain text;
//    with data-log-whole (a node's main log, which has no offsets) re-read the tail instead.
//  - [data-stats]: sample a cesi-agentd node's per-process CPU and memory while the page is
//    open; CPU % from two samples, a small chart of each since the page opened.
//  - input[data-pick-all]: tick or untick every row box of its table (the bulk form's rows);
//    ticked row boxes stay ticked when a live refresh swaps the table.
//  - [data-theme-toggle]: light or dark, remembered in this browser (theme.js applies it).
//  - keys (not while typing): / search, g d / g p / g j go to a section, j / k move through the
//    rows of the first table, o or Enter opens the row, r refreshes, t theme, ? the sheet.
"use strict";

document.addEventListener("change", (event) => {
  const all = event.target.closest("input[data-pick-all]");
  if (all) {
    all.closest("table").querySelectorAll("input[name=target]").forEach((box) => {
      box.checked = all.checked;
    });
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// what identifies a focused link, button or box across a live refresh (which swaps the
// markup): keyboard users keep their place instead of falling back to the top of the page
function focusKey(node) {
  const form = node.closest("form");
  return [node.tagName, node.getAttribute("href") || "", node.name || "", node.value || "",
          node.title || "", form ? form.getAttribute("action") : ""].join("\u0000");
}

function live(element) {
  const url = element.dataset.live;
  const every = Number(element.dataset.interval || 2000);
  let etag = null;
  async function refresh() {
    if (document.hidden) { return; }
    const headers = { "Accept": "text/html", "X-Fragment": "1" };
    if (etag) { headers["If-None-Match"] = etag; }
    try {
      const response = await fetch(url, { headers, credentials: "same-origin", cache: "no-cache" });
      if (response.status === 200) {
        etag = response.headers.get("ETag");
        const ticked = new Set(Array.from(element.querySelectorAll("input[name=target]:checked"),
                                          (box) => box.value));
        const active = element.contains(document.activeElement) ? focusKey(document.activeElement) : null;
        const currentRow = element.querySelector("tr.current");
        const current = currentRow ? rowLink(currentRow) : null;
        const currentHref = current ? current.getAttribute("href") : null;
        const focused = current && document.activeElement === current;
        element.innerHTML = await response.text();  // server-rendered, escaped by Jinja
        element.querySelectorAll("input[name=target]").forEach((box) => {
          box.checked = ticked.has(box.value);
        });
        if (active) {
          const again = Array.from(element.querySelectorAll("a, button, input, select")).find(
            (node) => focusKey(node) === active);
          if (again) { again.focus(); }
        }
        if (currentHref) {  // the row the keyboard is on stays the current one
          const again = Array.from(element.querySelectorAll("tr a")).find(
            (link) => link.getAttribute("href") === currentHref);
          if (again) {
            again.closest("tr").classList.add("current");
            if (focused) { again.focus(); }
          }
        }
        element.dispatchEvent(new CustomEvent("live:updated", { bubbles: true }));
        document.body.classList.remove("offline");
      } else if (response.status === 401) {
        window.location.reload();  // the session ended: the login page takes over
      }
    } catch (error) {
      document.body.classList.add("offline");
    }
  }
  window.setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
}

function follow(element) {
  // one pane per stream (a process page shows stdout and stderr side by side), or one pane
  // with the whole tail re-read (a node's main log: data-log-whole, no offsets)
  const status = element.querySelector("[data-log-status]");
  const pause = element.querySelector("button[data-log-pause]");
  const sizes = element.querySelector("select[data-log-size]");
  const find = element.querySelector("input[data-log-find]");
  const wrap = element.querySelector("button[data-log-wrap]");
  const whole = element.hasAttribute("data-log-whole");
  const panes = Array.from(element.querySelectorAll("pre.logtail"), (pre) => (
    { pre, stream: pre.dataset.stream || "stdout", offset: -1, text: "" }));
  let paused = false;
  function limit() { return Number(sizes ? sizes.value : 65536); }
  function render(pane) {
    const atBottom = pane.pre.scrollTop + pane.pre.clientHeight >= pane.pre.scrollHeight - 4;
    const term = find ? find.value : "";
    let found = 0;
    pane.pre.textContent = "";
    if (!term) {
      pane.pre.textContent = pane.text;
    } else {  // text nodes and <mark>s, never markup from the log
      const lower = pane.text.toLowerCase();
      const needle = term.toLowerCase();
      let at = 0;
      for (let hit = lower.indexOf(needle); hit >= 0; hit = lower.indexOf(needle, at)) {
        pane.pre.append(document.createTextNode(pane.text.slice(at, hit)));
        const mark = document.createElement("mark");
        mark.textContent = pane.text.slice(hit, hit + term.length);
        pane.pre.append(mark);
        at = hit + term.length;
        found += 1;
      }
      pane.pre.append(document.createTextNode(pane.text.slice(at)));
    }
    if (atBottom || pane.offset < 0) { pane.pre.scrollTop = pane.pre.scrollHeight; }
    return found;
  }
  function renderAll() {
    const found = panes.reduce((sum, pane) => sum + render(pane), 0);
    if (find && find.value) { status.textContent = found + " match" + (found === 1 ? "" : "es") + " of \u201c" + find.value + "\u201d"; }
  }
  async function poll(pane) {
    const params = new URLSearchParams({ stream: pane.stream, offset: Math.max(pane.offset, 0),
                                         length: limit() });
    const response = await fetch(element.dataset.log + "?" + params, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) { throw new Error(body.error || ("HTTP " + response.status)); }
    if (whole) {
      pane.text = body.data;
      pane.offset = 0;
      return;
    }
    if (pane.offset < 0 || body.overflow) { pane.text = ""; }
    pane.text = (pane.text + (body.data || "")).slice(-limit());
    pane.offset = body.offset;
  }
  async function pollAll() {
    if (paused || document.hidden) { return; }
    try {
      await Promise.all(panes.map(poll));
      renderAll();
      if (!(find && find.value)) {
        status.textContent = whole ? "the last " + panes[0].text.length + " characters, re-read every few seconds"
          : "following · " + panes.map((pane) => pane.stream + " " + pane.offset + " bytes").join(" · ");
      }
    } catch (error) {
      status.textContent = error instanceof TypeError ? "the console is not answering; retrying" : error.message;
    }
  }
  function restart() { panes.forEach((pane) => { pane.offset = -1; pane.text = ""; }); pollAll(); }
  if (pause) {
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.textContent = paused ? "Resume" : "Pause";
      pause.setAttribute("aria-pressed", String(paused));
      status.textContent = paused ? "paused" : "following";
      if (!paused) { pollAll(); }
    });
  }
  if (wrap) {
    wrap.addEventListener("click", () => {
      const off = panes[0].pre.classList.toggle("nowrap");
      panes.forEach((pane) => pane.pre.classList.toggle("nowrap", off));
      wrap.setAttribute("aria-pressed", String(!off));
    });
  }
  if (find) { find.addEventListener("input", renderAll); }
  if (sizes) { sizes.addEventListener("change", restart); }
  pollAll();
  return window.setInterval(pollAll, Number(element.dataset.interval || 1000));
}

const SVG = "http://www.w3.org/2000/svg";
const KEEP = 60;  // samples per chart

function sparkline(values, ceiling) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 " + KEEP + " 20");
  svg.setAttribute("class", "spark");
  svg.setAttribute("preserveAspectRatio", "none");
  const top = Math.max(ceiling, 1.25 * Math.max(...values, 0), 1e-9);
  const points = values.map((v, i) => (KEEP - values.length + i) + "," + (20 - 19 * v / top).toFixed(1));
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points.join(" "));
  svg.appendChild(line);
  return svg;
}

function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) { td.className = cls; }
  td.textContent = text;  // names come from a node: text, never markup
  return td;
}

function stats(element) {
  const only = element.dataset.process || null;  // "group:name" on a process page
  const body = element.querySelector("tbody");
  const status = element.querySelector("[data-stats-status]");
  const history = new Map();
  let last = new Map();
  async function sample() {
    if (document.hidden) { return; }
    let data;
    try {
      const response = await fetch(element.dataset.stats, { credentials: "same-origin", cache: "no-cache" });
      data = await response.json();
      if (!response.ok) { status.textContent = data.error || ("HTTP " + response.status); return; }
    } catch (error) {
      status.textContent = "the console is not answering; retrying";
      return;
    }
    if (!data.available) { status.textContent = data.reason; body.textContent = ""; return; }
    const seen = new Map();
    body.textContent = "";
    for (const p of data.processes) {
      const key = p.group + ":" + p.name;
      if (only && key !== only) { continue; }
      seen.set(key, { pid: p.pid, cpu: p.cpu_seconds, now: data.now });
      const before = last.get(key);
      const samples = history.get(key) || { cpu: [], mem: [] };
      let cpu = null;
      if (before && before.pid === p.pid && data.now > before.now) {
        cpu = Math.max(0, (p.cpu_seconds - before.cpu) / (data.now - before.now) * 100);
        samples.cpu = samples.cpu.concat([cpu]).slice(-KEEP);
      }
      samples.mem = samples.mem.concat([p.rss_kb]).slice(-KEEP);
      history.set(key, samples);
      const row = document.createElement("tr");
      row.dataset.process = key;
      row.append(cell(key), cell(String(p.pid), "num"), cell(String(p.processes), "num"),
                 cell(cpu === null ? "…" : cpu.toFixed(1) + " %", "num"));
      const cpuChart = document.createElement("td");
      cpuChart.appendChild(sparkline(samples.cpu, 100));
      row.append(cpuChart, cell((p.rss_kb / 1024).toFixed(1) + " MB", "num"));
      const memChart = document.createElement("td");
      memChart.appendChild(sparkline(samples.mem, 0));
      row.append(memChart);
      body.appendChild(row);
    }
    if (!body.children.length) {
      const row = document.createElement("tr");
      row.append(cell(only ? "not running" : "no process is running", "empty"));
      body.appendChild(row);
    }
    last = seen;
    status.textContent = "live · every " + (Number(element.dataset.interval || 2000) / 1000) + " s";
  }
  sample();
  window.setInterval(sample, Number(element.dataset.interval || 2000));
}

// -- history charts: uPlot (vendored) for CPU and memory, an SVG band for the states -------
function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function timeline(host, body) {
  const svg = document.createElementNS(SVG, "svg");
  const span = Math.max(body.to - body.from, 1);
  svg.setAttribute("viewBox", "0 0 1000 20");
  svg.setAttribute("preserveAspectRatio", "none");
  body.states.forEach((change, index) => {
    const start = Math.max(change[0], body.from);
    const end = index + 1 < body.states.length ? body.states[index + 1][0] : body.to;
    const name = String(change[1]);  // a process's state, or a node's (ONLINE, UNREACHABLE...)
    const band = document.createElementNS(SVG, "rect");
    band.setAttribute("x", ((start - body.from) / span * 1000).toFixed(2));
    band.setAttribute("width", Math.max((end - start) / span * 1000, 0.5).toFixed(2));
    band.setAttribute("y", "0");
    band.setAttribute("height", "20");
    band.setAttribute("class", "t-" + name);
    const title = document.createElementNS(SVG, "title");
    title.textContent = name + " from " + new Date(start * 1000).toLocaleString();
    band.appendChild(title);
    svg.appendChild(band);
    const crashed = (name === "EXITED" && change[2]) || name === "BACKOFF" || name === "FATAL";
    if (crashed) {  // a crash or failed start: marked
      const mark = document.createElementNS(SVG, "line");
      const x = ((start - body.from) / span * 1000).toFixed(2);
      mark.setAttribute("x1", x); mark.setAttribute("x2", x);
      mark.setAttribute("y1", "0"); mark.setAttribute("y2", "20");
      mark.setAttribute("class", "crash");
      svg.appendChild(mark);
    }
  });
  host.textContent = "";
  host.appendChild(svg);
  host.setAttribute("aria-label", "State timeline: " + body.states.length + " changes");
}

function charts(section) {
  const status = section.querySelector("[data-charts-status]");
  const plots = {};
  let range = "1h";
  const counts = {};
  function draw(metric, body) {
    const host = section.querySelector("[data-chart=" + metric + "]");
    if (plots[metric]) { plots[metric].destroy(); }
    host.textContent = "";
    const ink = cssColor("--muted");
    const options = {
      width: Math.max(host.clientWidth, 300), height: 150,
      scales: { x: { time: true, range: [body.from, body.to] } },
      series: [{}, { label: metric === "cpu" ? "CPU %" : "Memory MB",
                     stroke: cssColor("--accent"), width: 1.5, spanGaps: false }],
      axes: [{ stroke: ink, grid: { stroke: cssColor("--line") } },
             { stroke: ink, grid: { stroke: cssColor("--line") } }],
    };
    plots[metric] = new window.uPlot(options, [body.points.map((p) => p[0]),
                                               body.points.map((p) => p[1])], host);
    counts[metric] = body.points.length;
  }
  async function load() {
    if (document.hidden || !window.uPlot) { return; }
    try {
      for (const metric of ["memory", "cpu"]) {
        const params = new URLSearchParams({ metric, range });
        const response = await fetch(section.dataset.charts + "?" + params,
                                     { credentials: "same-origin" });
        const body = await response.json();
        if (!response.ok) { status.textContent = body.error || ("HTTP " + response.status); return; }
        draw(metric, body);
        if (metric === "memory") { timeline(section.querySelector("[data-timeline]"), body); }
      }
      status.textContent = range + ": " + counts.memory + " memory and " + counts.cpu
        + " CPU samples" + (section.dataset.chartsOf ? " (" + section.dataset.chartsOf + ")" : "");
    } catch (error) {
      status.textContent = "the console is not answering; retrying";
    }
  }
  section.querySelectorAll("button[data-range]").forEach((button) => {
    button.addEventListener("click", () => {
      range = button.dataset.range;
      section.querySelectorAll("button[data-range]").forEach((other) => {
        other.setAttribute("aria-pressed", String(other === button));
      });
      load();
    });
  });
  window.addEventListener("load", load);  // uPlot is loaded (deferred) by then
  window.setInterval(load, 15000);
}

document.querySelectorAll("[data-charts]").forEach(charts);
document.querySelectorAll("[data-live]").forEach(live);
document.querySelectorAll("[data-stats]").forEach(stats);
document.querySelectorAll("[data-log]").forEach(follow);

// -- theme ---------------------------------------------------------------------------------
function toggleTheme() {
  const dark = document.documentElement.dataset.theme !== "dark";
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  try { window.localStorage.setItem("cesi-theme", dark ? "dark" : "light"); } catch (error) { /* */ }
}
document.querySelectorAll("[data-theme-toggle]").forEach((button) => {
  button.addEventListener("click", toggleTheme);
});

// -- keyboard --------------------------------------------------------------------------------
const SECTIONS = { d: "/", p: "/processes", j: "/jobs" };
let pendingG = 0;

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable]") !== null;
}

function rows() {
  const table = document.querySelector("main table.list tbody");
  return table ? Array.from(table.rows).filter((row) => row.querySelector("a")) : [];
}

function rowLink(row) {  // the row's own page (a process row also links to its node)
  return row.querySelector("a[data-row-link]") || row.querySelector("a");
}

function move(step) {
  const all = rows();
  if (!all.length) { return; }
  const now = all.findIndex((row) => row.classList.contains("current"));
  const next = Math.min(all.length - 1, Math.max(0, now < 0 ? 0 : now + step));
  all.forEach((row) => row.classList.remove("current"));
  all[next].classList.add("current");
  rowLink(all[next]).focus();
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
  const sheet = document.querySelector("dialog[data-shortcuts]");
  if (sheet && sheet.open) { return; }
  const key = event.key;
  if (pendingG && Date.now() - pendingG < 1500 && SECTIONS[key]) {
    pendingG = 0;
    window.location.assign(SECTIONS[key]);
    return;
  }
  pendingG = 0;
  if (key === "/") {
    const search = document.querySelector("input[data-search]");
    if (search) { event.preventDefault(); search.focus(); search.select(); }
  } else if (key === "?") {
    if (sheet) { sheet.showModal(); }
  } else if (key === "g") {
    pendingG = Date.now();
  } else if (key === "j" || key === "k") {
    move(key === "j" ? 1 : -1);
  } else if (key === "o") {
    const current = document.querySelector("main tr.current");
    if (current) { rowLink(current).click(); }
  } else if (key === "r") {
    window.location.reload();
  } else if (key === "t") {
    toggleTheme();
  }
});
