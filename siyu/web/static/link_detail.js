/* Link detail page: charts from the embedded JSON, and a live QR preview that shows option errors inline. */
(function () {
  var data = document.getElementById("detail-data");
  if (data && window.SiyuCharts) {
    var d = JSON.parse(data.textContent);
    var pairs = function (dim) { return (d.breakdowns[dim] || []).map(function (r) { return [r.label, r.clicks]; }); };
    SiyuCharts.line("chart-trend", d.trend.x, [
      {name: d.labels.clicks, data: d.trend.clicks}, {name: d.labels.unique, data: d.trend.unique}
    ]);
    d.pies.forEach(function (dim) {
      SiyuCharts.pie("chart-" + dim, pairs(dim));
      // Boxes are narrow (three a row, one on phones): names go to a legend, shares inside the ring.
      var chart = window.echarts && echarts.getInstanceByDom(document.getElementById("chart-" + dim));
      if (chart) chart.setOption({
        legend: {type: "scroll", bottom: 0},
        series: [{center: ["50%", "44%"], radius: ["32%", "66%"], minShowLabelAngle: 12,
                  label: {position: "inside", formatter: "{d}%", color: "#fff"}}]
      });
    });
    d.bars.forEach(function (dim) { SiyuCharts.bar("chart-" + dim, pairs(dim)); });
  }

  var form = document.getElementById("qr-form");
  if (!form || !window.fetch) return;
  var img = document.getElementById("qr-img"), error = document.getElementById("qr-error");
  var png = document.getElementById("qr-png"), svg = document.getElementById("qr-svg");
  var base = "/console/links/" + form.getAttribute("data-link") + "/qr";
  var timer = null, objectUrl = null, seq = 0;

  function params() {
    var p = new URLSearchParams();
    ["size", "border", "dark", "light", "error"].forEach(function (k) { p.set(k, form.elements[k].value); });
    if (form.elements.transparent.checked) p.set("light", "transparent");
    return p;
  }
  function showError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }
  function show(blob) {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(blob);
    img.src = objectUrl;
    img.hidden = false;
  }
  function refresh() {
    var mine = ++seq, p = params(), logo = form.elements.logo.files[0], request;
    png.parentNode.hidden = !!logo;  // plain links cannot carry the logo; the form buttons can
    if (logo) {
      var body = new FormData(form);
      body.set("light", p.get("light"));
      body.set("format", "png");
      body.set("preview", "1");
      request = fetch(base, {method: "POST", body: body, credentials: "same-origin"});
    } else {
      png.href = base + ".png?" + p + "&download=1";
      svg.href = base + ".svg?" + p + "&download=1";
      request = fetch(base + ".png?" + p, {credentials: "same-origin"});
    }
    request.then(function (r) {
      if (mine !== seq) return;
      if (r.ok) return r.blob().then(function (b) { if (mine === seq) { showError(""); show(b); } });
      return r.json().then(function (j) { showError(j.message); }, function () { showError(String(r.status)); });
    });
  }
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 250); }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
