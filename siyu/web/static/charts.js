/* Small wrappers over ECharts (served from the package; nothing loads from the internet). */
window.SiyuCharts = (function () {
  var charts = [];
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  function init(id) {
    var el = document.getElementById(id);
    if (!el || !window.echarts) return null;
    var chart = echarts.init(el);
    charts.push(chart);
    return chart;
  }
  return {
    line: function (id, x, series) {
      var c = init(id); if (!c) return;
      c.setOption({
        tooltip: {trigger: "axis"}, legend: {top: 0}, grid: {left: 40, right: 16, top: 32, bottom: 28},
        xAxis: {type: "category", data: x}, yAxis: {type: "value", minInterval: 1},
        series: series.map(function (s) { return {name: s.name, type: "line", smooth: true, data: s.data, areaStyle: {opacity: 0.08}}; })
      });
    },
    pie: function (id, pairs) {
      var c = init(id); if (!c) return;
      c.setOption({
        tooltip: {trigger: "item"},
        series: [{type: "pie", radius: ["35%", "70%"], data: pairs.map(function (p) { return {name: p[0], value: p[1]}; })}]
      });
    },
    bar: function (id, pairs) {
      var c = init(id); if (!c) return;
      var rows = pairs.slice().reverse();
      c.setOption({
        tooltip: {trigger: "axis"}, grid: {left: 100, right: 24, top: 8, bottom: 24},
        xAxis: {type: "value", minInterval: 1},
        yAxis: {type: "category", data: rows.map(function (p) { return p[0]; })},
        series: [{type: "bar", data: rows.map(function (p) { return p[1]; })}]
      });
    }
  };
})();
