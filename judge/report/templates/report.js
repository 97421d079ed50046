// The report's one script. Printing shows every folded conversation; the page's figures and tables need
// no script to be read. The item browser (item_browser.html.j2) draws its rows from the JSON block it
// embeds, a page at a time; every text goes in through textContent, never as markup.
(function () {
  "use strict";
  var opened = [];
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (element) {
      element.open = true;
      opened.push(element);
    });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (element) { element.open = false; });
    opened = [];
  });

  var VERDICTS = [  // [value, label, test on a verdict row v or a panel row p]
    ["ok", "scored", function (v) { return v && v.status === "ok"; }],
    ["not_applicable", "judged not applicable", function (v) { return v && v.status === "not_applicable"; }],
    ["failed", "failed call", function (v) { return v && v.status === "failed"; }],
    ["critical", "panel: critical failure", null, function (p) { return p.critical_fail === true; }],
    ["escalated", "panel: escalated for review", null, function (p) { return p.escalate === true; }],
    ["undecided", "panel: undecided", null, function (p) { return p.status === "undecided"; }]
  ];

  function element(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (className) { node.className = className; }
    return node;
  }

  function records(rows, fields) {  // rows are arrays in `fields` order
    return rows.map(function (row) {
      var record = {};
      fields.forEach(function (name, index) { record[name] = row[index]; });
      return record;
    });
  }

  function grouped(rows) {
    var by = new Map();
    rows.forEach(function (row) {
      if (!by.has(row.item_id)) { by.set(row.item_id, []); }
      by.get(row.item_id).push(row);
    });
    return by;
  }

  function fill(select, values, labels) {
    values.forEach(function (value, index) {
      var option = element("option", labels ? labels[index] : value);
      option.value = value;
      select.appendChild(option);
    });
  }

  function sorted(set) { return Array.from(set).sort(); }

  function ItemBrowser(root) {
    var block = document.getElementById(root.getAttribute("data-item-browser"));
    var data = JSON.parse(block.textContent);
    this.root = root;
    this.size = data.page_size;
    this.items = records(data.items, data.fields.items);
    this.verdicts = grouped(records(data.verdicts, data.fields.verdicts));
    this.panel = grouped(records(data.panel, data.fields.panel));
    this.filters = {};
    this.page = 0;
    this.shown = this.items;
    var pillars = new Set(), targets = new Set(), judges = new Set(), self = this;
    this.items.forEach(function (item) {
      (item.pillars || []).forEach(function (p) { pillars.add(p); });
      targets.add(item.target === null || item.target === undefined ? "" : item.target);
    });
    this.verdicts.forEach(function (rows) { rows.forEach(function (v) { judges.add(v.judge); pillars.add(v.pillar); }); });
    var present = VERDICTS.filter(function (entry) {
      var rows = entry[2] ? self.verdicts : self.panel, found = false;
      rows.forEach(function (list) { found = found || list.some(entry[2] || entry[3]); });
      return found;
    });
    root.querySelectorAll("[data-filter]").forEach(function (control) {
      var name = control.getAttribute("data-filter");
      self.filters[name] = control;
      if (name === "pillar") { fill(control, sorted(pillars)); }
      if (name === "target") {
        fill(control, sorted(targets), sorted(targets).map(function (t) { return t === "" ? "(no target)" : t; }));
      }
      if (name === "judge") { fill(control, sorted(judges)); }
      if (name === "verdict") {
        fill(control, present.map(function (e) { return e[0]; }), present.map(function (e) { return e[1]; }));
      }
      control.addEventListener(name === "text" ? "input" : "change", function () { self.apply(); });
    });
    root.querySelectorAll("[data-page]").forEach(function (button) {
      button.addEventListener("click", function () { self.go(button.getAttribute("data-page")); });
    });
    root.querySelector("[data-filters]").hidden = false;
    root.querySelector("[data-pager]").hidden = false;
    this.apply();
  }

  ItemBrowser.prototype.matches = function (item) {
    var f = this.filters, pillar = f.pillar.value, target = f.target.value, judge = f.judge.value;
    var verdict = f.verdict.value, text = f.text.value.trim().toLowerCase();
    if (target && (item.target || "") !== target) { return false; }
    if (text && String(item.id).toLowerCase().indexOf(text) < 0) { return false; }
    if (!pillar && !judge && !verdict) { return true; }
    var entry = VERDICTS.filter(function (e) { return e[0] === verdict; })[0];
    var verdicts = this.verdicts.get(item.id) || [];
    var byJudge = function (v) { return (!pillar || v.pillar === pillar) && (!judge || v.judge === judge); };
    if (!entry || entry[2]) {  // on the judges' verdict rows
      return verdicts.some(function (v) { return byJudge(v) && (!entry || entry[2](v)); });
    }
    return (this.panel.get(item.id) || []).some(function (p) {  // on the panel's rows (and the judge's on them)
      return (!pillar || p.pillar === pillar) && entry[3](p) && (!judge || verdicts.some(function (v) {
        return v.judge === judge && v.pillar === p.pillar && v.criterion === p.criterion;
      }));
    });
  };

  ItemBrowser.prototype.apply = function () {
    var self = this;
    this.shown = this.items.filter(function (item) { return self.matches(item); });
    this.page = 0;
    this.draw();
  };

  ItemBrowser.prototype.pages = function () { return Math.max(1, Math.ceil(this.shown.length / this.size)); };

  ItemBrowser.prototype.go = function (where) {
    var last = this.pages() - 1;
    this.page = {first: 0, prev: Math.max(0, this.page - 1), next: Math.min(last, this.page + 1), last: last}[where];
    this.draw();
  };

  ItemBrowser.prototype.draw = function () {
    var list = this.root.querySelector("[data-items]"), self = this;
    var first = this.page * this.size, page = this.shown.slice(first, first + this.size);
    list.textContent = "";
    page.forEach(function (item) { list.appendChild(self.render(item)); });
    if (!page.length) { list.appendChild(element("p", "No item matches these filters.", "nothing")); }
    this.root.querySelector("[data-status]").textContent = this.shown.length
      ? "items " + (first + 1).toLocaleString("en") + "–" + (first + page.length).toLocaleString("en") + " of " +
        this.shown.length.toLocaleString("en") + " matching (" + this.items.length.toLocaleString("en") +
        " in all) · page " + (this.page + 1) + " of " + this.pages()
      : "0 of " + this.items.length.toLocaleString("en") + " items match";
    this.root.querySelectorAll("[data-page]").forEach(function (button) {
      var back = button.getAttribute("data-page") === "first" || button.getAttribute("data-page") === "prev";
      button.disabled = back ? self.page === 0 : self.page >= self.pages() - 1;
    });
  };

  function cell(row, text, className) { row.appendChild(element("td", text === null || text === undefined ? "—" : text, className)); }

  ItemBrowser.prototype.render = function (item) {
    var article = element("article", null, "item");
    article.setAttribute("data-item", item.id);
    article.appendChild(element("h5", item.id + " · target " + (item.target || "(no target)") + " · " +
                                (item.pillars || []).join(", ")));
    var details = element("details");
    details.open = true;
    details.appendChild(element("summary", "Conversation (" + item.messages.length + " message(s)) and response"));
    item.messages.forEach(function (message) {
      var turn = element("p", null, "turn");
      turn.appendChild(element("span", message[0], "role"));
      turn.appendChild(document.createTextNode(" " + message[1]));
      details.appendChild(turn);
    });
    var response = element("p", null, "turn response");
    response.appendChild(element("span", "judged response", "role"));
    response.appendChild(document.createTextNode(" " + (item.response || "—")));
    details.appendChild(response);
    article.appendChild(details);
    var wrap = element("div", null, "table-wrap"), table = element("table", null, "judgments");
    table.appendChild(element("caption", "Verdicts"));
    var head = element("tr");
    ["pillar", "criterion", "judge", "sample", "status", "score", "rationale", "evidence"].forEach(function (name) {
      var th = element("th", name);
      th.scope = "col";
      head.appendChild(th);
    });
    table.appendChild(element("thead")).appendChild(head);
    var body = table.appendChild(element("tbody")), panel = this.panel.get(item.id) || [];
    var verdicts = this.verdicts.get(item.id) || [];
    var keys = [];
    panel.concat(verdicts).forEach(function (r) {
      var key = r.pillar + "\u0000" + r.criterion;
      if (keys.indexOf(key) < 0) { keys.push(key); }
    });
    keys.forEach(function (key) {
      var parts = key.split("\u0000");
      panel.filter(function (p) { return p.pillar === parts[0] && p.criterion === parts[1]; }).forEach(function (p) {
        var row = element("tr", null, "panel");
        [p.pillar, p.criterion].forEach(function (t) { row.appendChild(element("th", t)); });
        cell(row, "panel");
        cell(row, "");
        cell(row, p.status + (p.critical_fail ? ", critical failure" : ""));
        cell(row, p.score, "num");
        cell(row, p.escalate ? "escalated: " + (p.escalate_reasons || []).join(", ") : "");
        cell(row, "");
        body.appendChild(row);
      });
      verdicts.filter(function (v) { return v.pillar === parts[0] && v.criterion === parts[1]; }).forEach(function (v) {
        var row = element("tr");
        [v.pillar, v.criterion].forEach(function (t) { row.appendChild(element("th", t)); });
        cell(row, v.judge + (v.role === "tiebreak" ? " (tie-breaker)" : ""));
        cell(row, v.sample, "num");
        cell(row, v.status);
        cell(row, v.score, "num");
        cell(row, v.rationale || v.error);
        var evidence = element("td");
        (v.evidence || []).forEach(function (quote) {
          evidence.appendChild(element("q", quote));
          evidence.appendChild(document.createTextNode(" "));
        });
        row.appendChild(evidence);
        body.appendChild(row);
      });
    });
    if (!keys.length) {
      var none = element("tr");
      none.appendChild(element("td", "No verdict on this item.", "nothing")).colSpan = 8;
      body.appendChild(none);
    }
    wrap.appendChild(table);
    article.appendChild(wrap);
    return article;
  };

  document.querySelectorAll("[data-item-browser]").forEach(function (root) { root.browser = new ItemBrowser(root); });
})();
