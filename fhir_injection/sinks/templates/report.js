/* report.html's own script: draws the Vega-Lite charts and pages the coder worklist.
   Text goes into the page only through textContent; links only to an http(s) server base. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  window.reportReady = { charts: 0, chartErrors: 0 };

  // ---------------------------------------------------------------- charts
  var ids = Object.keys(data.charts);
  var pending = ids.length;
  ids.forEach(function (id) {
    var el = document.getElementById("chart-" + id);
    if (!el) { pending -= 1; return; }
    vegaEmbed(el, data.charts[id], { actions: false, renderer: "svg" })
      .then(function () {
        window.reportReady.charts += 1;
        if (window.reportReady.charts === pending) { window.reportReady.chartsMs = performance.now(); }
      })
      .catch(function (err) {
        window.reportReady.chartErrors += 1;
        el.textContent = "Chart not drawn: " + String(err && err.message ? err.message : err);
      });
  });

  // ---------------------------------------------------------------- worklist
  var S = data.strings;
  var COLS = 13, USD = 10, ADMIN = 1, TASK = 11, SEVERITY = 3, GAP = 4, MESSAGE = 6, DAYS = 12;
  var rows = data.rows;
  var WRAP = { 1: true, 5: true, 7: true, 11: true }; // ids and FHIR paths break anywhere
  var httpBase = /^https?:\/\/[^\s"'<>`\\]+$/i;
  var sourceBase = data.sourceBase && httpBase.test(data.sourceBase) ? data.sourceBase : null;
  var targetBase = data.targetBase && httpBase.test(data.targetBase) ? data.targetBase : null;
  var pageSize = data.pageSize || 50;
  var state = { gap: "", severity: "", text: "", sortCol: -1, sortDir: 1, page: 0 };
  var view = rows;

  function cell(row, col) { return col === USD || col === DAYS ? row[col] : S[row[col]]; }

  function url(base, reference) {
    if (!base || !reference) { return null; }
    var slash = reference.indexOf("/");
    if (slash < 1) { return null; }
    var type = reference.slice(0, slash), id = reference.slice(slash + 1);
    if (!/^[A-Za-z]+$/.test(type) || !id) { return null; }
    return base + "/" + type + "/" + encodeURIComponent(id);
  }

  // The administration and Task columns show the id; the link (or the title) names the type.
  function refCell(td, reference, base) {
    var href = url(base, reference);
    var label = reference.slice(reference.indexOf("/") + 1);
    td.title = reference;
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = label;
      td.appendChild(a);
    } else {
      td.textContent = label;
    }
  }

  // A gap's message is what this record lacks, then the gap's general definition: the first
  // part is shown, the rest folds away.
  function messageCell(td, message) {
    var cut = message.indexOf(". ");
    td.className = "msg";
    if (cut < 0) { td.textContent = message; return; }
    td.appendChild(document.createTextNode(message.slice(0, cut + 1) + " "));
    var more = document.createElement("details"), summary = document.createElement("summary");
    summary.textContent = "more";
    more.appendChild(summary);
    more.appendChild(document.createTextNode(message.slice(cut + 2)));
    td.appendChild(more);
  }

  function apply() {
    var text = state.text.toLowerCase();
    view = rows.filter(function (r) {
      if (state.gap && S[r[GAP]] !== state.gap) { return false; }
      if (state.severity && S[r[SEVERITY]] !== state.severity) { return false; }
      if (text) {
        for (var c = 0; c < COLS; c++) {
          if (c !== USD && c !== DAYS && S[r[c]].toLowerCase().indexOf(text) >= 0) { return true; }
        }
        return false;
      }
      return true;
    });
    if (state.sortCol >= 0) {
      var col = state.sortCol, dir = state.sortDir;
      view = view.map(function (r, i) { return [r, i]; });
      view.sort(function (a, b) {
        var x = cell(a[0], col), y = cell(b[0], col);
        var d;
        if (col === DAYS && (x === null || y === null)) {  // no limit known: last either way
          d = (x === null) - (y === null);
          if (d) { return d; }
        }
        d = col === USD || col === DAYS ? x - y : (x < y ? -1 : x > y ? 1 : 0);
        return d ? d * dir : a[1] - b[1];
      });
      view = view.map(function (p) { return p[0]; });
    }
    state.page = 0;
    draw();
  }

  function draw() {
    var tbody = document.querySelector("#worklist tbody");
    var pages = Math.max(1, Math.ceil(view.length / pageSize));
    if (state.page >= pages) { state.page = pages - 1; }
    var start = state.page * pageSize, end = Math.min(view.length, start + pageSize);
    var frag = document.createDocumentFragment();
    for (var i = start; i < end; i++) {
      var r = view[i], tr = document.createElement("tr");
      for (var c = 0; c < COLS; c++) {
        var td = document.createElement("td");
        if (WRAP[c]) { td.className = "wrap"; }
        if (c === ADMIN) { refCell(td, S[r[c]], sourceBase); }
        else if (c === TASK) { refCell(td, S[r[c]], targetBase); }
        else if (c === USD) { td.className = "num"; td.textContent = r[c].toFixed(2); }
        else if (c === DAYS) { td.className = "num"; td.textContent = r[c] === null ? "" : String(r[c]); }
        else if (c === MESSAGE) { messageCell(td, S[r[c]]); }
        else {
          td.textContent = S[r[c]];
          if (c === SEVERITY) { td.className = "sev-" + S[r[c]]; }
        }
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    document.getElementById("p-info").textContent = view.length
      ? "rows " + (start + 1) + "–" + end + " of " + view.length + " (page " + (state.page + 1) + " of " + pages + ")"
      : "no rows";
    document.getElementById("f-count").textContent = view.length + " of " + rows.length + " gaps";
    document.getElementById("p-prev").disabled = state.page === 0;
    document.getElementById("p-next").disabled = state.page >= pages - 1;
  }

  document.getElementById("f-gap").addEventListener("change", function (e) { state.gap = e.target.value; apply(); });
  document.getElementById("f-severity").addEventListener("change", function (e) { state.severity = e.target.value; apply(); });
  var typing = null;
  document.getElementById("f-text").addEventListener("input", function (e) {
    clearTimeout(typing);
    typing = setTimeout(function () { state.text = e.target.value; apply(); }, 150);
  });
  document.getElementById("p-prev").addEventListener("click", function () { state.page -= 1; draw(); });
  document.getElementById("p-next").addEventListener("click", function () { state.page += 1; draw(); });
  Array.prototype.forEach.call(document.querySelectorAll("#worklist th"), function (th) {
    th.addEventListener("click", function () {
      var col = Number(th.getAttribute("data-col"));
      state.sortDir = state.sortCol === col ? -state.sortDir : 1;
      state.sortCol = col;
      Array.prototype.forEach.call(document.querySelectorAll("#worklist th"), function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", state.sortDir > 0 ? "ascending" : "descending");
      apply();
    });
  });
  draw();
  window.reportReady.table = true;
  window.reportReady.tableMs = performance.now(); // since navigation started
  window.reportReady.chartsExpected = pending;
})();
