/* Charts of the customer-value pages (ECharts, served from the package). Data comes from a JSON script tag. */
(function () {
  var el = document.getElementById("value-data");
  if (!el || !window.echarts) return;
  var d = JSON.parse(el.textContent), charts = [];
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  function init(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    var c = echarts.init(node); charts.push(c); return c;
  }
  function columns(id, pairs, name) {
    var c = init(id); if (!c || !pairs) return;
    c.setOption({
      tooltip: {trigger: "axis"}, grid: {left: 40, right: 12, top: 16, bottom: 48},
      xAxis: {type: "category", data: pairs.map(function (p) { return p[0]; }), axisLabel: {rotate: 30, fontSize: 10}},
      yAxis: {type: "value", minInterval: 1},
      series: [{name: name || "", type: "bar", data: pairs.map(function (p) { return p[1]; }), itemStyle: {color: "#1677ff"}}]
    });
  }
  function pie(id, pairs) {
    var c = init(id); if (!c || !pairs) return;
    c.setOption({
      tooltip: {trigger: "item"}, color: ["#d4380d", "#faad14", "#389e0d", "#1677ff"],
      series: [{type: "pie", radius: ["35%", "70%"], data: pairs.map(function (p) { return {name: p[0], value: p[1]}; })}]
    });
  }
  function pyramid(id, rows, labels) {
    var c = init(id); if (!c || !rows) return;
    c.setOption({
      tooltip: {trigger: "item", formatter: function (p) { return p.name + "<br>" + labels.people + " " + p.data.people + "<br>" + labels.share + " " + p.data.share + "%"; }},
      color: ["#722ed1", "#1677ff", "#13c2c2", "#bfbfbf"],
      series: [{type: "funnel", sort: "ascending", left: "10%", width: "80%", minSize: "20%", gap: 2,
        label: {position: "inside", formatter: function (p) { return p.name + "  " + p.data.people; }},
        data: rows.map(function (r, i) { return {name: r[0], value: i + 1, people: r[1], share: r[2]}; })}]
    });
  }
  function tree(id, root) {
    var c = init(id); if (!c || !root) return;
    function shape(n) { return {name: n.name || ("#" + n.super_id), value: n.super_id, children: (n.children || []).map(shape)}; }
    c.setOption({
      tooltip: {trigger: "item", formatter: function (p) { return p.name + " (#" + p.value + ")"; }},
      series: [{type: "tree", data: [shape(root)], top: "5%", left: "12%", bottom: "5%", right: "20%", symbolSize: 9,
        initialTreeDepth: -1, label: {position: "left", verticalAlign: "middle", align: "right", fontSize: 12},
        leaves: {label: {position: "right", verticalAlign: "middle", align: "left"}}, expandAndCollapse: true}]
    });
    c.on("dblclick", function (p) { if (p.value) window.location.href = "/console/profiles/" + p.value; });
  }
  columns("chart-clv", d.clv, d.labels && d.labels.people);
  columns("chart-p-alive", d.p_alive, d.labels && d.labels.people);
  pie("chart-churn", d.churn);
  pyramid("chart-pyramid", d.pyramid, d.labels || {});
  tree("chart-tree", d.tree);
})();
