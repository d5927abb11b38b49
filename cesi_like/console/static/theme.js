// Before the page paints: the saved theme, else the system's (prefers-color-scheme). Loaded
// without defer, so a dark page never flashes white. The toggle is in console.js.
"use strict";
(function () {
  let saved = null;
  try { saved = window.localStorage.getItem("cesi-theme"); } catch (error) { /* private mode */ }
  const dark = saved ? saved === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
})();
