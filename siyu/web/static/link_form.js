/* Link form: add/remove rule, condition and variant rows, the UTM final-URL line, the password
   input, and the live preview (debounced POST of the unsaved form; the server answers with HTML). */
(function () {
  "use strict";
  var form = document.getElementById("link-form");
  if (!form) return;
  var box = document.getElementById("preview");
  var timer = null, seq = 0;

  function nextIndex(container, selector, attr) {
    var max = -1;
    container.querySelectorAll(selector).forEach(function (el) {
      var n = parseInt(el.getAttribute(attr), 10);
      if (!isNaN(n) && n > max) max = n;
    });
    return max + 1;
  }

  function fromTemplate(id, i, j) {
    var html = document.getElementById(id).innerHTML.replace(/__i__/g, String(i)).replace(/__j__/g, String(j || 0));
    var holder = document.createElement("div");
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }

  form.addEventListener("click", function (e) {
    var add = e.target.closest(".lf-add");
    if (add) {
      var rows = add.parentElement.querySelector(".lf-rows");
      var row = fromTemplate(add.getAttribute("data-template"), nextIndex(document, ".lf-rows [data-index]", "data-index"));
      rows.appendChild(row);
      var first = row.querySelector("input,select");
      if (first) first.focus();
      return;
    }
    var addCond = e.target.closest(".lf-add-cond");
    if (addCond) {
      var rule = addCond.closest(".lf-rule");
      var conds = rule.querySelector(".lf-conds");
      conds.appendChild(fromTemplate("tpl-cond", rule.getAttribute("data-index"), nextIndex(conds, "[data-cond]", "data-cond")));
      return;
    }
    var rm = e.target.closest("[data-remove]");
    if (rm) {
      var target = rm.closest(rm.getAttribute("data-remove"));
      if (target) target.remove();
      schedule();
    }
  });

  function utmFinal() {
    var out = document.getElementById("utm-final");
    var dest = form.elements["destination_url"].value.trim();
    var url;
    try { url = new URL(dest); } catch (err) { out.textContent = dest; return; }
    form.querySelectorAll("[data-utm]").forEach(function (input) {
      var name = "utm_" + input.getAttribute("data-utm"), value = input.value;
      if (value) { url.searchParams.delete(name); url.searchParams.append(name, value); }
    });
    out.textContent = url.toString();
  }

  function passwordInput() {
    var mode = form.querySelector("input[name=password_mode]:checked");
    form.elements["password"].disabled = !!mode && mode.value !== "set";
  }

  function refresh() {
    var mine = ++seq;
    fetch(form.getAttribute("data-preview"), {
      method: "POST", body: new FormData(form), credentials: "same-origin", redirect: "error",
      headers: {"X-Requested-With": "fetch"}
    }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.text();
    }).then(function (html) {
      if (mine === seq) box.innerHTML = html;
    }).catch(function () {
      if (mine === seq) {
        var p = document.createElement("p");
        p.className = "error";
        p.textContent = form.getAttribute("data-failed");
        box.replaceChildren(p);
      }
    });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  form.addEventListener("input", function (e) {
    if (e.target.name === "destination_url" || e.target.hasAttribute("data-utm")) utmFinal();
    schedule();
  });
  form.addEventListener("change", function (e) {
    if (e.target.name === "password_mode") passwordInput();
    schedule();
  });
  passwordInput();
})();
