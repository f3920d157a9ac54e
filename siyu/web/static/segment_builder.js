/* Segment builder: edits a rule tree (docs/segments.md) as readable rows inside AND/OR groups, each row or
   group with a NOT switch, and keeps the JSON in the form's textarea (what is posted, and what a browser
   without JavaScript edits). After each change it asks the server for the live count. */
(function () {
  "use strict";
  var root = document.getElementById("segment-builder");
  if (!root) return;
  var data = JSON.parse(document.getElementById("sb-data").textContent);
  var schema = data.schema, L = data.labels;
  var textarea = document.getElementById("sb-rule");
  var tree = document.getElementById("sb-tree");
  var live = document.getElementById("sb-live");
  var form = root.closest("form");
  var timer = null, seq = 0;
  var CLICK = "Short Link Clicked";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k.indexOf("on") === 0) node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function select(options, value, onchange, label) {
    var s = el("select", {"aria-label": label || "", onchange: function () { onchange(s.value); }});
    options.forEach(function (o) {
      var opt = el("option", {value: o[0], text: o[1]});
      if (String(o[0]) === String(value)) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }

  function input(value, oninput, attrs) {
    var i = el("input", Object.assign({type: "text", value: value == null ? "" : String(value)}, attrs || {}));
    i.addEventListener("input", function () { oninput(i.value); });
    return i;
  }

  function datalist(id, values) {
    if (document.getElementById(id)) return;
    var dl = el("datalist", {id: id});
    values.forEach(function (v) { dl.appendChild(el("option", {value: v[0], label: v[1] || v[0]})); });
    root.appendChild(dl);
  }

  // --- the UI tree: groups {group, op, not, children} and conditions {cond, not, data} ---------------------
  function parse(j) {
    if (j && typeof j === "object" && "not" in j) { var inner = parse(j.not); inner.not = !inner.not; return inner; }
    if (j && (Array.isArray(j.and) || Array.isArray(j.or))) {
      var op = Array.isArray(j.and) ? "and" : "or";
      return {group: true, op: op, not: false, children: j[op].map(parse)};
    }
    return {group: false, not: false, data: j && typeof j === "object" ? j : defaults("event")};
  }

  function serialize(u) {
    var inner;
    if (u.group) { inner = {}; inner[u.op] = u.children.map(serialize); } else { inner = u.data; }
    return u.not ? {not: inner} : inner;
  }

  function defaults(type) {
    if (type === "trait") return {type: "trait", field: schema.traits[0] || "", op: "eq", value: ""};
    if (type === "tag") return {type: "tag", tag: schema.tags.length ? schema.tags[0].code : ""};
    if (type === "identifier") return {type: "identifier", id_type: schema.id_types.indexOf("phone") >= 0 ? "phone" : schema.id_types[0]};
    if (type === "consent") return {type: "consent", purpose: schema.purposes.length ? schema.purposes[0].code : ""};
    return {type: "event", event: "*", within_days: 30, op: "gte", value: 1};
  }

  var state;
  try { state = parse(JSON.parse(textarea.value || "{}")); } catch (e) { state = parse({and: [defaults("event")]}); }
  if (!state.group) state = {group: true, op: "and", not: false, children: [state]};

  function changed() {
    textarea.value = JSON.stringify(serialize(state), null, 2);
    clearTimeout(timer);
    timer = setTimeout(count, 350);
  }

  function redraw() { tree.innerHTML = ""; tree.appendChild(group(state, null)); changed(); }

  // --- rows -------------------------------------------------------------------------------------------------
  function splitList(text) {
    return text.split(/[,，、]/).map(function (s) { return s.trim(); }).filter(function (s) { return s; });
  }

  function traitValue(d, box) {
    var op = d.op;
    if (op === "exists" || op === "not_exists") { delete d.value; return; }
    if (op === "between") {
      var v = Array.isArray(d.value) ? d.value : [0, 0];
      d.value = v;
      box.appendChild(input(v[0], function (x) { d.value[0] = Number(x); changed(); }, {type: "number", "aria-label": "min"}));
      box.appendChild(input(v[1], function (x) { d.value[1] = Number(x); changed(); }, {type: "number", "aria-label": "max"}));
      return;
    }
    if (op === "in" || op === "not_in") {
      var shown = Array.isArray(d.value) ? d.value.join(", ") : (d.value || "");
      d.value = splitList(String(shown));
      box.appendChild(input(shown, function (x) { d.value = splitList(x); changed(); }, {placeholder: L.values_hint, "aria-label": "value"}));
      return;
    }
    var numeric = ["gt", "gte", "lt", "lte"].indexOf(op) >= 0;
    if (numeric) d.value = Number(d.value) || 0; else if (Array.isArray(d.value)) d.value = d.value.join(",");
    box.appendChild(input(d.value, function (x) { d.value = numeric ? Number(x) : x; changed(); },
      {type: numeric ? "number" : "text", "aria-label": "value", step: "any"}));
  }

  function conditionFields(u, box) {
    var d = u.data;
    var ops = function (list) { return list.map(function (o) { return [o, L["op." + o] || o]; }); };
    if (d.type === "trait") {
      datalist("sb-traits", schema.traits.map(function (t) { return [t]; }));
      box.appendChild(input(d.field, function (x) { d.field = x; changed(); }, {list: "sb-traits", "aria-label": L["type.trait"], class: "sb-field"}));
      box.appendChild(select(ops(schema.ops.trait), d.op, function (x) { d.op = x; redraw(); }, "op"));
      traitValue(d, box);
    } else if (d.type === "tag") {
      var tags = schema.tags.map(function (t) { return [t.code, t.name]; });
      box.appendChild(select(tags.length ? tags : [["", L.pick]], d.tag, function (x) { d.tag = x; redraw(); }, L["type.tag"]));
      box.appendChild(select(ops(schema.ops.tag), d.op || "has", function (x) {
        if (x === "has") { delete d.op; delete d.value; } else { d.op = x; d.value = x === "in" ? [] : ""; }
        redraw();
      }, "op"));
      if (d.op && d.op !== "has") {
        var known = (schema.tags.filter(function (t) { return t.code === d.tag; })[0] || {}).values || [];
        if (d.op !== "in" && known.length) {
          if (!d.value) d.value = known[0].code;
          box.appendChild(select(known.map(function (v) { return [v.code, v.name]; }), d.value, function (x) { d.value = x; changed(); }, "value"));
        } else if (d.op === "in") {
          box.appendChild(input((d.value || []).join(", "), function (x) { d.value = splitList(x); changed(); }, {placeholder: L.values_hint, "aria-label": "value"}));
        } else {
          box.appendChild(input(d.value, function (x) { d.value = x; changed(); }, {"aria-label": "value"}));
        }
      }
    } else if (d.type === "identifier") {
      box.appendChild(el("span", {text: L.has_identifier}));
      box.appendChild(select(schema.id_types.map(function (t) { return [t, t]; }), d.id_type, function (x) { d.id_type = x; changed(); }, L["type.identifier"]));
    } else if (d.type === "consent") {
      box.appendChild(el("span", {text: L.has_consent}));
      box.appendChild(select(schema.purposes.map(function (p) { return [p.code, p.name + " (" + p.code + ")"]; }), d.purpose,
        function (x) { d.purpose = x; changed(); }, L["type.consent"]));
    } else {
      eventFields(d, box);
    }
  }

  function eventFields(d, box) {
    datalist("sb-events", [["*", L.event_any]].concat(schema.events.map(function (e) { return [e]; })));
    box.appendChild(el("span", {text: L.within}));
    box.appendChild(input(d.within_days, function (x) {
      if (x === "") delete d.within_days; else d.within_days = parseInt(x, 10);
      changed();
    }, {type: "number", min: "1", max: "3650", class: "sb-days", "aria-label": L.days, title: L.all_time}));
    box.appendChild(el("span", {text: L.days}));
    box.appendChild(input(d.event, function (x) { d.event = x; changed(); }, {list: "sb-events", class: "sb-field", "aria-label": L["type.event"]}));
    var links = [["", L.any_link]].concat(schema.links.map(function (s) { return [s, "/" + s]; }));
    if (schema.links.length && (d.event === CLICK || d.event === "*" || d.link)) {
      box.appendChild(select(links, d.link || "", function (x) {
        if (x) { d.link = x; d.event = CLICK; } else delete d.link;
        redraw();
      }, L.link));
    }
    if (schema.link_tags.length && (d.event === CLICK || d.event === "*" || d.link_tag)) {
      box.appendChild(select([["", L.link_tag]].concat(schema.link_tags.map(function (s) { return [s, "#" + s]; })), d.link_tag || "",
        function (x) { if (x) { d.link_tag = x; d.event = CLICK; } else delete d.link_tag; redraw(); }, L.link_tag));
    }
    box.appendChild(select([["count", L.count], ["amount", L.amount]], d.measure || "count", function (x) {
      if (x === "count") { delete d.measure; d.value = Math.round(Number(d.value) || 1); } else { d.measure = x; }
      redraw();
    }, "measure"));
    box.appendChild(select(schema.ops.event.map(function (o) { return [o, L["op." + o]]; }), d.op || "gte", function (x) { d.op = x; changed(); }, "op"));
    box.appendChild(input(d.value == null ? 1 : d.value, function (x) {
      d.value = d.measure === "amount" ? Number(x) : parseInt(x, 10);
      changed();
    }, {type: "number", min: "0", step: d.measure === "amount" ? "any" : "1", class: "sb-days", "aria-label": "value"}));
    if (d.measure !== "amount") box.appendChild(el("span", {text: L.times}));
  }

  function notSwitch(u) {
    var box = el("input", {type: "checkbox", onchange: function () { u.not = box.checked; redraw(); }});
    box.checked = !!u.not;
    return el("label", {class: "sb-not" + (u.not ? " on" : "")}, [box, el("span", {text: L.not})]);
  }

  function removeButton(u, parent) {
    return el("button", {type: "button", class: "link sb-rm", text: L.remove, onclick: function () {
      parent.children.splice(parent.children.indexOf(u), 1);
      if (!parent.children.length) parent.children.push({group: false, not: false, data: defaults("event")});
      redraw();
    }});
  }

  function condition(u, parent) {
    var types = ["trait", "tag", "identifier", "consent", "event"].map(function (t) { return [t, L["type." + t]]; });
    var fields = el("span", {class: "sb-fields"});
    conditionFields(u, fields);
    return el("div", {class: "sb-cond" + (u.not ? " sb-negated" : ""), "data-type": u.data.type}, [
      notSwitch(u),
      select(types, u.data.type, function (x) { u.data = defaults(x); redraw(); }, "type"),
      fields,
      removeButton(u, parent),
    ]);
  }

  function group(u, parent) {
    var children = el("div", {class: "sb-children"});
    u.children.forEach(function (c) { children.appendChild(c.group ? group(c, u) : condition(c, u)); });
    var head = el("div", {class: "sb-group-head"}, [
      notSwitch(u),
      select([["and", L.all], ["or", L.any]], u.op, function (x) { u.op = x; redraw(); }, "and/or"),
      el("button", {type: "button", class: "sb-add", text: L.add, onclick: function () {
        u.children.push({group: false, not: false, data: defaults("trait")}); redraw();
      }}),
      el("button", {type: "button", class: "sb-add", text: L.add_group, onclick: function () {
        u.children.push({group: true, op: "or", not: false, children: [{group: false, not: false, data: defaults("tag")}]}); redraw();
      }}),
      parent ? removeButton(u, parent) : null,
    ]);
    return el("div", {class: "sb-group sb-" + u.op + (u.not ? " sb-negated" : "")}, [head, children]);
  }

  // --- the live count -----------------------------------------------------------------------------------------
  function count() {
    if (!live) return;
    var mine = ++seq;
    var body = new FormData();
    body.append("csrf", form.querySelector("input[name=csrf]").value);
    body.append("rule", textarea.value);
    live.classList.add("busy");
    fetch(root.getAttribute("data-preview"), {method: "POST", body: body, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (res) {
        if (mine !== seq) return;
        live.classList.remove("busy");
        var errors = document.getElementById("sb-errors");
        errors.innerHTML = "";
        if (res.errors) {
          document.getElementById("sb-count").textContent = "—";
          document.getElementById("sb-share").textContent = "";
          res.errors.forEach(function (e) { errors.appendChild(el("li", {text: e.field + "：" + e.message})); });
          return;
        }
        document.getElementById("sb-count").textContent = res.count.toLocaleString();
        document.getElementById("sb-share").textContent = res.text;
        document.getElementById("sb-refreshed").textContent = res.refreshed;
      })
      .catch(function () {
        if (mine !== seq) return;
        live.classList.remove("busy");
        document.getElementById("sb-count").textContent = "—";
        document.getElementById("sb-errors").innerHTML = "";
        document.getElementById("sb-errors").appendChild(el("li", {text: live.getAttribute("data-failed")}));
      });
  }

  textarea.addEventListener("change", function () {
    try { state = parse(JSON.parse(textarea.value)); if (!state.group) state = {group: true, op: "and", not: false, children: [state]}; redraw(); }
    catch (e) { count(); }
  });
  root.classList.add("sb-ready");
  redraw();
})();
