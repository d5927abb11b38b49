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
        element.innerHTML = await response.text();  // server-rendered, escaped by Jinja
        element.querySelectorAll("input[name=target]").forEach((box) => {
          box.checked = ticked.has(box.value);
        });
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
  const output = element.querySelector("pre");
  const status = element.querySelector("[data-log-status]");
  const pause = element.querySelector("button[data-log-pause]");
  const sizes = element.querySelector("select[data-log-size]");
  const stream = element.querySelector("select[data-log-stream]");
  const whole = element.hasAttribute("data-log-whole");
  let offset = -1;
  let paused = false;
  let timer = null;
  function limit() { return Number(sizes ? sizes.value : 65536); }
  async function poll() {
    if (paused || document.hidden) { return; }
    const params = new URLSearchParams({ stream: stream ? stream.value : "stdout",
                                         offset: Math.max(offset, 0), length: limit() });
    try {
      const response = await fetch(element.dataset.log + "?" + params, { credentials: "same-origin" });
      const body = await response.json();
      if (!response.ok) { status.textContent = body.error || ("HTTP " + response.status); return; }
      if (whole) {
        const atBottom = offset < 0 || output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
        output.textContent = body.data;
        if (atBottom) { output.scrollTop = output.scrollHeight; }
        offset = 0;
        status.textContent = "the last " + body.data.length + " characters, re-read every few seconds";
        return;
      }
      if (offset < 0 || body.overflow) { output.textContent = ""; }
      if (body.data) {
        const atBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
        output.textContent += body.data;
        if (output.textContent.length > limit()) {
          output.textContent = output.textContent.slice(-limit());
        }
        if (atBottom) { output.scrollTop = output.scrollHeight; }
      }
      offset = body.offset;
      status.textContent = "following · " + offset + " bytes";
    } catch (error) {
      status.textContent = "the console is not answering; retrying";
    }
  }
  function restart() { offset = -1; output.textContent = ""; poll(); }
  if (pause) {
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.textContent = paused ? "Resume" : "Pause";
      status.textContent = paused ? "paused" : "following";
      if (!paused) { poll(); }
    });
  }
  if (sizes) { sizes.addEventListener("change", restart); }
  if (stream) { stream.addEventListener("change", restart); }
  poll();
  timer = window.setInterval(poll, Number(element.dataset.interval || 1000));
  return timer;
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

document.querySelectorAll("[data-live]").forEach(live);
document.querySelectorAll("[data-stats]").forEach(stats);
document.querySelectorAll("[data-log]").forEach(follow);
