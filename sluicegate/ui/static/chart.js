// Draws each panel chart from the JSON the page carries beside it (ui/chart.py):
// {"x": [unix seconds...], "lines": [{"label", "values", "axis": 0|1}]}. Runs on load
// and after htmx swaps a panel's body in (a filter change).
(function () {
  "use strict";
  var colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

  // tick labels with enough digits for small dollar figures (0.0001, not 0)
  function figures(u, splits) {
    return splits.map(function (v) {
      return v === 0 || Math.abs(v) >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(2)));
    });
  }

  function draw(root) {
    root.querySelectorAll(".chart").forEach(function (section) {
      var holder = section.querySelector(".uplot-chart");
      var source = section.querySelector(".chart-data");
      if (!holder || !source || holder.dataset.drawn) return;
      var chart = JSON.parse(source.textContent);
      var series = [{}];
      var axes = [{}];
      var scales = { x: { time: true, range: chart.range } };
      chart.lines.forEach(function (line, i) {
        var scale = line.axis === 1 ? "right" : "left";
        scales[scale] = {};
        series.push({ label: line.label, stroke: colours[i % colours.length], scale: scale, width: 2 });
      });
      axes.push({ scale: "left", values: figures, size: 70 });
      if (scales.right) axes.push({ scale: "right", side: 1, grid: { show: false }, values: figures, size: 60 });
      var width = Math.max(320, Math.min(1100, holder.parentElement.clientWidth || 800));
      // the page's times are UTC: so are the chart's, whatever the browser's zone
      var utc = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); };
      new uPlot({ width: width, height: 260, series: series, axes: axes, scales: scales, tzDate: utc },
        [chart.x].concat(chart.lines.map(function (l) { return l.values; })), holder);
      holder.dataset.drawn = "1";
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  // after a swap the old target may be gone: look again at the whole page (drawn charts
  // are marked and skipped)
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
})();
