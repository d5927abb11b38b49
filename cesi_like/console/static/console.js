// cesi-like console: the little behaviour pages need, with no inline script anywhere (the
// Content-Security-Policy forbids it). Three parts, each driven by data- attributes:
//  - form[data-confirm]: ask before a destructive POST; the text is an attribute, never code.
//  - [data-live]: re-fetch this fragment every data-interval ms, with If-None-Match, and swap
//    it in only when the server says it changed (304 otherwise). Paused while the tab is hidden.
//  - [data-log]: follow a process log through the JSON API by offset, append as plain text;
//    with data-log-whole (a node's main log, which has no offsets) re-read the tail instead.
"use strict";

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
        element.innerHTML = await response.text();  // server-rendered, escaped by Jinja
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

document.querySelectorAll("[data-live]").forEach(live);
document.querySelectorAll("[data-log]").forEach(follow);
