// vllm-pin site: sorting, filtering, copy buttons, and lookups in precomputed tables.
// No answer is computed here: "Will it run here?" only indexes strings written by Python.
"use strict";

function byId(id) { return document.getElementById(id); }
function data(id) { var el = byId(id); return el ? JSON.parse(el.textContent) : null; }
function cell(tr, text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }

// natural order: "0.10.1.1" after "0.9.2", "2.7.1" after "2.10.0" is wrong, so compare parts
function naturalCompare(a, b) {
  var x = a.split(/(\d+)/), y = b.split(/(\d+)/);
  for (var i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    var nx = parseInt(x[i], 10), ny = parseInt(y[i], 10);
    return (isNaN(nx) || isNaN(ny)) ? (x[i] < y[i] ? -1 : 1) : nx - ny;
  }
  return x.length - y.length;
}

function setupReleases() {
  var table = byId("releases");
  if (!table) return;
  var body = table.tBodies[0], filter = byId("filter"), hide = byId("hide-yanked");
  function apply() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
    Array.prototype.forEach.call(body.rows, function (tr) {
      var text = tr.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
      if (hide.checked && tr.dataset.yanked === "true") ok = false;
      tr.hidden = !ok;
      if (ok) shown++;
    });
    byId("shown").textContent = shown + " of " + body.rows.length + " releases";
  }
  filter.addEventListener("input", apply);
  hide.addEventListener("change", apply);
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.addEventListener("click", function () {
      var dir = th.dataset.dir === "asc" ? -1 : 1;
      Array.prototype.forEach.call(th.parentNode.cells, function (c) { delete c.dataset.dir; });
      th.dataset.dir = dir === 1 ? "asc" : "desc";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var ca = a.cells[col], cb = b.cells[col];
        return dir * naturalCompare(ca.dataset.key || ca.textContent, cb.dataset.key || cb.textContent);
      });
      rows.forEach(function (tr) { body.appendChild(tr); });
    });
  });
  apply();
}

function setupCopy() {
  Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (button) {
    button.addEventListener("click", function () {
      var text = button.parentNode.querySelector("pre").textContent;
      var done = function () { button.textContent = "copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
      } else { fallbackCopy(text); done(); }
    });
  });
}

function fallbackCopy(text) {
  var area = document.createElement("textarea");
  area.value = text; document.body.appendChild(area); area.select();
  document.execCommand("copy"); document.body.removeChild(area);
}

// The answer for one host, as `vllm-pin fit --json` gives it: {version, distribution,
// variant, fits, reasons} per release. Only lookups: the reasons stored under each choice.
function fitAnswers(fit, host) {
  var idx = {};
  fit.dimensions.forEach(function (dim) {
    idx[dim] = fit.choices[dim].findIndex(function (c) { return c.value === host[dim]; });
  });
  var noGpu = host.driver === "none" && host.arch === "none";
  return fit.releases.map(function (r) {
    var on = r.on[host.machine], seen = {}, reasons = [];
    [].concat(on.python[idx.python], on.glibc[idx.glibc], noGpu ? on.no_gpu : [],
              on.driver[idx.driver], on.arch[idx.arch]).forEach(function (i) {
      if (!seen[i]) { seen[i] = true; reasons.push(fit.strings[i]); }
    });
    return { version: r.version, distribution: r.distribution, variant: r.variant,
             fits: reasons.length === 0, reasons: reasons };
  });
}

function setupFit() {
  var fit = data("fit-data");
  if (!fit) return;
  var defaults = { glibc: "2.35", arch: "sm_90", python: "3.12", machine: "x86_64" };
  fit.dimensions.forEach(function (dim) {
    var select = byId("host-" + dim);
    fit.choices[dim].forEach(function (c) {
      var option = document.createElement("option");
      option.value = c.value; option.textContent = c.label;
      select.appendChild(option);
    });
    var params = new URLSearchParams(location.search);
    select.value = params.get(dim) || defaults[dim] || "";
    if (select.selectedIndex < 0) select.selectedIndex = select.options.length - 1;
    select.addEventListener("change", show);
  });
  byId("fit-only").addEventListener("change", show);
  function host() {
    var h = {};
    fit.dimensions.forEach(function (dim) { h[dim] = byId("host-" + dim).value; });
    return h;
  }
  function show() {
    var answers = fitAnswers(fit, host()), body = byId("fit-table").tBodies[0], only = byId("fit-only").checked;
    body.textContent = "";
    var fitting = answers.filter(function (a) { return a.fits; });
    var newest = {};
    fitting.forEach(function (a) { newest[a.distribution] = a.version; });
    var parts = Object.keys(newest).map(function (d) { return d + " " + newest[d]; });
    byId("fit-summary").textContent = fitting.length + " of " + answers.length + " releases fit. " +
      (parts.length ? "Newest that fits: " + parts.join(", ") + "." : "None fits this host.");
    answers.slice().reverse().forEach(function (a) {
      if (only && !a.fits) return;
      var tr = document.createElement("tr");
      tr.className = a.fits ? "fits" : "nofit";
      tr.dataset.version = a.distribution + " " + a.version;
      var link = document.createElement("a");
      link.href = "releases/" + a.distribution + "-" + a.version + ".html";
      link.textContent = a.distribution + " " + a.version;
      cell(tr, "").appendChild(link);
      cell(tr, a.fits ? "yes" : "no");
      cell(tr, a.reasons.join("; "));
      body.appendChild(tr);
    });
  }
  window.vllmPinFit = function (h) { return fitAnswers(fit, h); };
  show();
}

function setupTimeline() {
  var names = data("tl-data");
  if (!names) return;
  var input = byId("tl-search"), body = byId("tl-table").tBodies[0];
  input.value = new URLSearchParams(location.search).get("q") || "";
  function show() {
    var q = input.value.trim().toUpperCase(), hits = [];
    if (q) names.forEach(function (n) {
      var name = n.name.toUpperCase();
      if (name.indexOf(q) >= 0) hits.push([name === q ? 0 : 1, n]);
    });
    hits.sort(function (a, b) { return a[0] - b[0] || naturalCompare(a[1].name, b[1].name); });
    body.textContent = "";
    hits.slice(0, 60).forEach(function (hit) {
      var n = hit[1];
      n.found.forEach(function (p) {
        var tr = document.createElement("tr");
        cell(tr, n.name); cell(tr, p.kind); cell(tr, p.first);
        cell(tr, p["still-present"] ? p.last + " (still present)" : p.last);
        cell(tr, p.line);
        body.appendChild(tr);
      });
      n.instead.forEach(function (r) {
        var tr = document.createElement("tr");
        tr.className = "instead";
        cell(tr, n.name); cell(tr, n.found.length ? "replaced" : "not in any release");
        cell(tr, "vllm " + r.vllm).colSpan = 2;
        cell(tr, r.instead + " (" + r.source + ")");
        body.appendChild(tr);
      });
    });
    byId("tl-count").textContent = q ? hits.length + " names match" + (hits.length > 60 ? " (first 60 shown)" : "") : names.length + " names";
  }
  input.addEventListener("input", show);
  show();
}

setupReleases();
setupCopy();
setupFit();
setupTimeline();
