// The dashboard's two static files, served from this process (no CDN: it works with no internet).
// The script is the only one a page loads (the Content-Security-Policy allows 'self' scripts only):
// it re-fetches the page's main content (`?partial=1`) every data-live ms and swaps it in, so
// figures update without a full reload. The fetched HTML is the server's escaped rendering. A round
// is skipped while the operator is typing in a field of the page (the swap would wipe it) or the
// tab is hidden.

export const DASHBOARD_JS = `"use strict";
(function () {
  var main = document.getElementById("main");
  var stamp = document.getElementById("updated");
  if (!main || !main.dataset.live) return;
  var every = Math.max(500, Number(main.dataset.live) || 5000);
  function busy() {
    var a = document.activeElement;
    return document.hidden || (a && a !== main && main.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName));
  }
  function refresh() {
    if (busy()) { setTimeout(refresh, every); return; }
    var url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    fetch(url, { credentials: "same-origin", headers: { accept: "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        main.innerHTML = html;
        if (stamp) stamp.textContent = "updated " + new Date().toISOString().slice(11, 19) + "Z";
      })
      .catch(function (e) { if (stamp) stamp.textContent = "not updated: " + e.message; })
      .finally(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
`;

export const DASHBOARD_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1b1f24; background: #f6f8fa; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em; background: #24292f; color: #fff; }
header a { color: #c9d1d9; text-decoration: none; margin-right: 1em; }
header a[aria-current] { color: #fff; font-weight: bold; }
#updated { margin-left: auto; color: #8b949e; font-size: 12px; }
main { padding: 1em 1.2em; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .6em 1em; margin-bottom: 1em; }
h2 { font-size: 16px; margin: .2em 0 .6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; word-break: break-word; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; }
.warn { color: #9a6700; font-weight: bold; }
.bad { color: #cf222e; }
.empty { color: #57606a; }
.advice { color: #57606a; }
.why { color: #9a6700; }
pre.commands { background: #f6f8fa; padding: .4em .8em; margin: .3em 0; white-space: pre-wrap; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 1em; margin: 0; }
dt { color: #57606a; }
svg { background: #fff; }
svg text { font: 10px system-ui, sans-serif; fill: #57606a; }
svg rect.bar { fill: #0969da; }
svg rect.bar.rate { fill: #1a7f37; }
form.inline { display: inline; }
button { padding: 3px 10px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 1em; }
`;
