// RUNE UI behaviour. Loaded from /static (the Content-Security-Policy forbids inline
// script). Text from the API is only ever inserted with textContent, never as HTML.
(function () {
  "use strict";
  var THEME_KEY = "rune-theme";
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem(THEME_KEY); } catch (e) { /* private mode */ }
  if (saved === "light" || saved === "dark") root.setAttribute("data-theme", saved);

  function currentTheme() {
    var t = root.getAttribute("data-theme");
    if (t) return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function toggleTheme() {
    var next = currentTheme() === "dark" ? "light" : "dark";
    root.setAttribute("data-theme", next);
    try { localStorage.setItem(THEME_KEY, next); } catch (e) { /* ignore */ }
    document.querySelectorAll("[data-chart]").forEach(function (el) { drawChart(el, true); });
  }

  // Live events of a run: EventSource reconnects by itself and sends Last-Event-ID,
  // which the UI server passes to the API, so nothing is lost or repeated.
  var source = null;
  function startLive(el) {
    if (source || el.getAttribute("data-terminal") === "true") return;
    var list = el.querySelector("ul.events");
    var state = el.querySelector("[data-live-state]");
    source = new EventSource(el.getAttribute("data-src"));
    source.addEventListener("log", function (msg) {
      var ev; try { ev = JSON.parse(msg.data); } catch (e) { ev = { event: msg.data }; }
      var li = document.createElement("li");
      var parts = [ev.recorded_at || "", ev.event || "", ev.status || ""];
      if (typeof ev.duration_ms === "number") parts.push(ev.duration_ms.toFixed(1) + " ms");
      if (ev.error_type) parts.push(ev.error_type);
      if (ev.labels && Object.keys(ev.labels).length) parts.push(JSON.stringify(ev.labels));
      li.textContent = parts.join("  ");
      if (list) { list.appendChild(li); list.scrollTop = list.scrollHeight; }
      var empty = el.querySelector(".empty-events"); if (empty) empty.remove();
    });
    source.addEventListener("end", function (msg) {
      source.close(); source = null;
      if (state) state.textContent = "finished: " + msg.data;
      // Show the final results.
      window.setTimeout(function () { window.location.reload(); }, 300);
    });
    source.addEventListener("open", function () { if (state) state.textContent = "live"; });
    source.addEventListener("error", function () { if (state && source) state.textContent = "reconnecting…"; });
  }

  function series(data, key) { return (data[key] || []).map(function (v) { return v === null ? null : v; }); }

  function drawChart(el, redraw) {
    if (typeof uPlot === "undefined") return;
    if (el._plot) { if (!redraw) return; el._plot.destroy(); el._plot = null; }
    var src = document.getElementById(el.getAttribute("data-chart"));
    if (!src) return;
    var data; try { data = JSON.parse(src.textContent); } catch (e) { return; }
    var xKey = el.getAttribute("data-x");
    var keys = el.getAttribute("data-y").split(",");
    var x = xKey ? series(data, xKey) : (data[keys[0]] || []).map(function (_, i) { return i + 1; });
    if (!x.length) { el.textContent = "No data to chart."; return; }
    var styles = getComputedStyle(root);
    var palette = [styles.getPropertyValue("--bar"), styles.getPropertyValue("--bar2"), styles.getPropertyValue("--warn"), styles.getPropertyValue("--bad")];
    var fg = styles.getPropertyValue("--fg"), line = styles.getPropertyValue("--line");
    var opts = {
      title: el.getAttribute("data-title") || "",
      width: Math.max(300, el.clientWidth || 600), height: 240,
      scales: { x: { time: false } },
      axes: [
        { stroke: fg, grid: { stroke: line }, label: el.getAttribute("data-xlabel") || "" },
        { stroke: fg, grid: { stroke: line }, label: el.getAttribute("data-ylabel") || "" }
      ],
      series: [{ label: el.getAttribute("data-xlabel") || "x" }].concat(keys.map(function (k, i) {
        return { label: k, stroke: palette[i % palette.length].trim(), width: 2, points: { show: true, size: 6 } };
      }))
    };
    el.textContent = "";
    el._plot = new uPlot(opts, [x].concat(keys.map(function (k) { return series(data, k); })), el);
  }

  // Compare: enable the button once two runs are ticked.
  function updateCompare(form) {
    var n = form.querySelectorAll("input[name=ids]:checked").length;
    var btn = form.querySelector("[data-compare-button]");
    if (btn) { btn.disabled = n < 2; btn.textContent = "Compare " + (n ? n + " " : "") + "runs"; }
  }

  // New run: show only the fieldsets of the chosen kind (all stay in the form, so
  // switching kind loses nothing).
  function updateKind(form) {
    var sel = form.querySelector("select[name=kind]");
    if (!sel) return;
    form.querySelectorAll("[data-kinds]").forEach(function (fs) {
      fs.hidden = fs.getAttribute("data-kinds").split(" ").indexOf(sel.value) < 0;
    });
  }

  function init(scope) {
    (scope || document).querySelectorAll("[data-live]").forEach(startLive);
    (scope || document).querySelectorAll("[data-chart]").forEach(function (el) { drawChart(el, false); });
    (scope || document).querySelectorAll("form[data-compare]").forEach(updateCompare);
    (scope || document).querySelectorAll("form[data-new-run]").forEach(updateKind);
  }

  document.addEventListener("change", function (e) {
    var form = e.target.form;
    if (!form) return;
    if (form.hasAttribute("data-compare")) updateCompare(form);
    if (form.hasAttribute("data-new-run") && e.target.name === "kind") updateKind(form);
  });
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-theme-toggle]")) toggleTheme();
    if (e.target.closest("[data-print]")) window.print();
  });

  // Keyboard: g then r/c/n/s/l/y/e jumps to a page; j/k move through table rows;
  // Enter opens the focused row; "/" focuses the first filter field.
  var pendingG = false;
  var jumps = { r: "/runs", c: "/compare", n: "/new", s: "/schedules", l: "/load", y: "/system", e: "/estop" };
  document.addEventListener("keydown", function (e) {
    var t = e.target.tagName;
    if (t === "INPUT" || t === "TEXTAREA" || t === "SELECT" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (pendingG && jumps[e.key]) { window.location.href = jumps[e.key]; pendingG = false; return; }
    pendingG = e.key === "g";
    if (e.key === "/") { var f = document.querySelector("form.filters input, form.filters select"); if (f) { e.preventDefault(); f.focus(); } }
    if (e.key === "j" || e.key === "k") {
      var rows = Array.prototype.slice.call(document.querySelectorAll("tbody tr[tabindex]"));
      if (!rows.length) return;
      var i = rows.indexOf(document.activeElement);
      i = e.key === "j" ? Math.min(rows.length - 1, i + 1) : Math.max(0, i - 1);
      rows[i].focus();
    }
    if (e.key === "Enter" && document.activeElement && document.activeElement.hasAttribute("data-href")) {
      window.location.href = document.activeElement.getAttribute("data-href");
    }
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(); });
  else init();
  document.addEventListener("htmx:afterSwap", function (e) { init(e.target); });
  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-chart]").forEach(function (el) { drawChart(el, true); });
  });
})();
