// Draws each panel chart from the JSON the page carries beside it (ui/chart.py):
// {"x": [unix seconds...], "lines": [{"label", "values", "axis": 0|1}]}. Runs on load
// and after htmx swaps a panel's body in (a filter change).
(function () {
  "use strict";
  var colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

  function draw(root) {
    root.querySelectorAll(".chart").forEach(function (section) {
      var holder = section.querySelector(".uplot-chart");
      var source = section.querySelector(".chart-data");
      if (!holder || !source || holder.dataset.drawn) return;
      var chart = JSON.parse(source.textContent);
      var series = [{}];
      var axes = [{}];
      var scales = { x: { time: true } };
      chart.lines.forEach(function (line, i) {
        var scale = line.axis === 1 ? "right" : "left";
        scales[scale] = {};
        series.push({ label: line.label, stroke: colours[i % colours.length], scale: scale, width: 2 });
      });
      axes.push({ scale: "left" });
      if (scales.right) axes.push({ scale: "right", side: 1, grid: { show: false } });
      var width = Math.max(320, Math.min(1100, holder.parentElement.clientWidth || 800));
      new uPlot({ width: width, height: 260, series: series, axes: axes, scales: scales },
        [chart.x].concat(chart.lines.map(function (l) { return l.values; })), holder);
      holder.dataset.drawn = "1";
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  // after a swap the old target may be gone: look again at the whole page (drawn charts
  // are marked and skipped)
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
})();
