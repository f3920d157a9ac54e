/* QR tools: drag-and-drop, a preview with boxes around found codes, and results without a page reload.
   Everything here is an enhancement: without JS the form posts normally and the server renders results. */
(function () {
  "use strict";
  var form = document.getElementById("qr-form");
  if (!form || !window.fetch || !window.FormData || !window.DOMParser) return;
  var drop = document.getElementById("qr-drop");
  var preview = document.getElementById("qr-scan-preview");
  var img = preview.querySelector("img");
  var boxes = preview.querySelector(".qr-boxes");
  var inputs = form.querySelectorAll("input.qr-file");
  var button = form.querySelector("button[type=submit]");
  var chosen = null;

  function show(file) {
    chosen = file;
    boxes.innerHTML = "";
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(file);
    preview.hidden = false;
  }

  function drawBoxes() {
    boxes.innerHTML = "";
    if (!img.naturalWidth) return;
    var scale = img.clientWidth / img.naturalWidth;
    var items = document.querySelectorAll("#qr-results [data-bbox]");
    Array.prototype.forEach.call(items, function (item, i) {
      var b = item.getAttribute("data-bbox").split(",").map(Number);
      var el = document.createElement("div");
      el.className = "qr-box";
      el.textContent = String(i + 1);
      el.style.left = b[0] * scale + "px";
      el.style.top = b[1] * scale + "px";
      el.style.width = (b[2] - b[0]) * scale + "px";
      el.style.height = (b[3] - b[1]) * scale + "px";
      boxes.appendChild(el);
    });
  }

  function send() {
    var data = new FormData();
    data.append("csrf", form.elements.csrf.value);
    if (chosen) data.append("image", chosen, chosen.name || "upload");
    var label = button.textContent;
    button.disabled = true;
    button.textContent = button.getAttribute("data-busy") || label;
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "x-csrf-token": form.elements.csrf.value },
    })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("qr-results");
        var target = document.getElementById("qr-results");
        if (fresh && target) {
          target.innerHTML = fresh.innerHTML;
          if (img.complete) drawBoxes(); else img.onload = drawBoxes;
          target.scrollIntoView({ behavior: "smooth", block: "start" });
        } else {
          form.submit();
        }
      })
      .catch(function () { form.submit(); })
      .then(function () { button.disabled = false; button.textContent = label; });
  }

  Array.prototype.forEach.call(inputs, function (input) {
    input.addEventListener("change", function () {
      if (!input.files || !input.files[0]) return;
      Array.prototype.forEach.call(inputs, function (other) { if (other !== input) other.value = ""; });
      show(input.files[0]);
      send();
    });
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    send();
  });

  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    var file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (!file) return;
    Array.prototype.forEach.call(inputs, function (input) { input.value = ""; });
    show(file);
    send();
  });
  window.addEventListener("resize", drawBoxes);
})();
