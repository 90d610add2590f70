#include "harness/html_report.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness/report.h"
#include "ir/error.h"

namespace qv::harness {

namespace {

std::string esc(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  return o;
}

std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string index_string(const std::vector<int64_t>& idx) {
  std::string s = "[";
  for (size_t k = 0; k < idx.size(); ++k) s += (k ? ", " : "") + std::to_string(idx[k]);
  return s + "]";
}

// The explanation of one element, as the terminal report prints it.
std::string detail_text(const std::string& what, const ElementDetail& d) {
  std::ostringstream o;
  o << what << " at " << d.layer << index_string(d.index) << ": float network " << d.float_q << ", integer network " << d.reference_q
    << " (re-evaluated on the float inputs: " << d.local_q << ")\n";
  if (!d.exact_pre.empty()) {
    o << "  exact pre-rounding value p = " << d.exact_pre << " = " << num(d.exact_pre_value) << " LSB";
    if (d.boundary) o << "; " << d.rounding << " boundary " << num(*d.boundary) << " at distance " << num(std::fabs(d.exact_pre_value - *d.boundary)) << " LSB";
    o << "\n";
  }
  if (d.float_pre) o << "  float pre-rounding value " << num(*d.float_pre) << " LSB (float error " << num(*d.float_pre - d.exact_pre_value) << " LSB)\n";
  if (!d.computation.empty()) o << "  " << d.computation << "\n";
  return o.str();
}

nlohmann::json plot_data(const CrossCheck& c) {
  nlohmann::json layers = nlohmann::json::array();
  nlohmann::json heat = nullptr;
  for (const LayerReport& l : c.layers) {
    layers.push_back({{"layer", l.layer}, {"elements", l.elements}, {"differing", l.differing}, {"max_lsb", l.max_lsb},
                      {"boundary", l.boundary}, {"form", l.form}, {"propagated", l.propagated}, {"unexplained", l.unexplained},
                      {"off_grid", l.off_grid}, {"hist", l.lsb_histogram}});
    if (!l.channel_position_counts.empty())
      heat = {{"layer", l.layer}, {"differing", l.differing}, {"channels", l.heatmap_channels}, {"columns", l.heatmap_columns},
              {"height", l.heatmap_height}, {"width", l.heatmap_width}, {"counts", l.channel_position_counts}};
  }
  return {{"dtype", c.dtype}, {"layers", layers}, {"heatmap", heat}};
}

constexpr const char* kStyle = R"CSS(
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222; background: #fff; max-width: 1150px; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; } td, th { padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
table.layers td, table.layers th { text-align: right; padding: 1px 8px; border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; }
table.layers td:first-child, table.layers th:first-child { text-align: left; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #c62828; font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 8px; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
svg text { font: 11px system-ui, sans-serif; fill: #333; } svg .axis { stroke: #999; stroke-width: 1; }
.hists { display: flex; flex-wrap: wrap; gap: 6px; } .hist { border: 1px solid #eee; padding: 2px; }
#heatinfo { font-size: 12px; min-height: 1.4em; color: #555; } .note { color: #555; font-size: 12px; }
)CSS";

constexpr const char* kScript = R"JS(
(function () {
  const D = JSON.parse(document.getElementById('qv-data').textContent);
  const NS = 'http://www.w3.org/2000/svg';
  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, attrs) {
    const t = el('text', Object.assign({x: x, y: y}, attrs || {}), parent);
    t.textContent = s;
    return t;
  }
  function tip(e, s) { el('title', {}, e).textContent = s; }
  function short(s, n) { return s.length > n ? '\u2026' + s.slice(s.length - n + 1) : s; }
  const CLASSES = [['boundary', '#4e79a7'], ['form', '#59a14f'], ['propagated', '#f28e2b'], ['unexplained', '#e15759']];
  const rows = D.layers.filter(l => l.differing > 0);

  // Differing elements per layer, stacked by class.
  (function () {
    const host = document.getElementById('bars');
    if (!rows.length) { host.textContent = 'No layer differs.'; return; }
    const labelW = 290, plotW = 600, rowH = 16, top = 40, W = labelW + plotW + 190, H = top + rows.length * rowH + 8;
    const max = Math.max.apply(null, rows.map(l => l.differing));
    const svg = el('svg', {width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, id: 'bars-svg'}, host);
    let lx = labelW;
    CLASSES.forEach(([c, col]) => { el('rect', {x: lx, y: 4, width: 12, height: 12, fill: col, class: 'legend'}, svg); text(svg, lx + 16, 14, c); lx += 120; });
    for (let k = 0; k <= 4; ++k) {
      const x = labelW + plotW * k / 4;
      el('line', {x1: x, y1: top - 6, x2: x, y2: H - 4, class: 'axis', 'stroke-dasharray': k ? '2,3' : ''}, svg);
      text(svg, x, top - 10, String(Math.round(max * k / 4)), {'text-anchor': 'middle'});
    }
    rows.forEach((l, i) => {
      const y = top + i * rowH;
      const g = el('g', {class: 'bar', 'data-layer': l.layer, 'data-differing': l.differing}, svg);
      text(g, labelW - 6, y + rowH - 4, short(l.layer, 44), {'text-anchor': 'end'});
      let x = labelW;
      CLASSES.forEach(([c, col]) => {
        const n = l[c];
        if (!n) return;
        const w = Math.max(n / max * plotW, 1);
        tip(el('rect', {x: x, y: y + 2, width: w, height: rowH - 4, fill: col, class: 'seg seg-' + c}, g), l.layer + ': ' + n + ' ' + c);
        x += w;
      });
      text(g, x + 4, y + rowH - 4, String(l.differing) + (l.max_lsb > 1 ? '  (max ' + l.max_lsb + ' LSB)' : ''));
    });
  })();

  // |float - integer| in LSB: all layers together, then each differing layer (log scale).
  function histogram(parent, hist, w, h, label, cls) {
    const svg = el('svg', {width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, class: 'hist'}, parent);
    const bins = hist.length, left = 6, bottom = 16, top = 16, bw = (w - 2 * left) / bins;
    const max = Math.max.apply(null, hist.concat([1]));
    text(svg, left, 11, label);
    el('line', {x1: left, y1: h - bottom, x2: w - left, y2: h - bottom, class: 'axis'}, svg);
    hist.forEach((n, b) => {
      const bh = n > 0 ? Math.max(Math.log10(1 + n) / Math.log10(1 + max) * (h - bottom - top), 1) : 0;
      const r = el('rect', {x: left + b * bw + 1, y: h - bottom - bh, width: bw - 2, height: bh, fill: b === 0 ? '#bbb' : '#4e79a7', class: cls, 'data-count': n}, svg);
      tip(r, (b === 8 ? '>= 8' : String(b)) + ' LSB: ' + n + ' elements');
      text(svg, left + b * bw + bw / 2, h - 4, b === 8 ? '8+' : String(b), {'text-anchor': 'middle'});
    });
  }
  (function () {
    const host = document.getElementById('hists');
    const total = [0, 0, 0, 0, 0, 0, 0, 0, 0];
    D.layers.forEach(l => l.hist.forEach((n, b) => { total[b] += n; }));
    histogram(document.getElementById('hist-total'), total, 420, 150, 'all layers: ' + total.reduce((a, b) => a + b, 0) + ' elements', 'hbar-total');
    if (!rows.length) { host.textContent = 'No layer differs.'; return; }
    rows.forEach(l => histogram(host, l.hist, 180, 100, short(l.layer, 30), 'hbar'));
  })();

  // Channel x position heatmap of the worst layer.
  (function () {
    const host = document.getElementById('heatmap'), H = D.heatmap;
    if (!H) { host.textContent = 'No layer differs.'; return; }
    const C = H.channels, P = H.columns;
    const cw = Math.max(1, Math.min(12, Math.floor(760 / P))), ch = Math.max(1, Math.min(10, Math.floor(640 / C)));
    const left = 50, top = 24, W = left + P * cw + 120, Ht = top + C * ch + 30;
    const max = Math.max.apply(null, H.counts.concat([1]));
    const svg = el('svg', {width: W, height: Ht, viewBox: '0 0 ' + W + ' ' + Ht, id: 'heatmap-svg'}, host);
    function colour(n) {
      if (n === 0) return '#f4f4f4';
      const t = Math.sqrt(n / max);
      const c0 = [255, 224, 130], c1 = [140, 0, 20];
      return 'rgb(' + c0.map((a, k) => Math.round(a + (c1[k] - a) * t)).join(',') + ')';
    }
    const g = el('g', {class: 'cells'}, svg);
    for (let c = 0; c < C; ++c)
      for (let p = 0; p < P; ++p) {
        const n = H.counts[c * P + p];
        el('rect', {x: left + p * cw, y: top + c * ch, width: cw, height: ch, fill: colour(n), class: 'cell', 'data-count': n}, g);
      }
    text(svg, left, 14, 'position (h * W + w) \u2192  ' + P + ' columns' + (H.height ? ' of ' + Math.ceil(H.height * H.width / P) + ' positions (' + H.height + ' x ' + H.width + ')' : ''));
    text(svg, left - 6, top + 9, '0', {'text-anchor': 'end'});
    text(svg, left - 6, top + C * ch, String(C - 1), {'text-anchor': 'end'});
    text(svg, 12, top + C * ch / 2, 'channel', {transform: 'rotate(-90 12 ' + (top + C * ch / 2) + ')', 'text-anchor': 'middle'});
    const lx = left + P * cw + 20;
    for (let k = 0; k < 10; ++k)
      el('rect', {x: lx, y: top + k * 14, width: 16, height: 14, fill: colour(max * Math.pow(1 - k / 9, 2) || 0), class: 'legend'}, svg);
    text(svg, lx + 20, top + 10, String(max));
    text(svg, lx + 20, top + 136, '0');
    const info = document.getElementById('heatinfo');
    svg.addEventListener('mousemove', ev => {
      const r = svg.getBoundingClientRect();
      const p = Math.floor((ev.clientX - r.left - left) / cw), c = Math.floor((ev.clientY - r.top - top) / ch);
      info.textContent = (p >= 0 && p < P && c >= 0 && c < C) ? 'channel ' + c + ', column ' + p + ': ' + H.counts[c * P + p] + ' differing' : '';
    });
  })();
  document.body.setAttribute('data-rendered', 'yes');
})();
)JS";

}  // namespace

std::string html_report(const PipelineResult& r) {
  const CrossCheck& c = r.float32;
  const bool ok = verdict(r) == 0;
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>qverify: " << esc(r.model) << " under "
    << esc(r.config.name) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  h << "<h1>qverify cross-check: " << esc(r.model) << " under " << esc(r.config.name) << "</h1>\n";
  h << "<noscript><p class=\"bad\">The plots are drawn by the page's inline JavaScript; the tables below need none.</p></noscript>\n";

  // Summary.
  h << "<h2>Summary</h2>\n<table id=\"summary\">\n";
  auto row = [&](const std::string& k, const std::string& v) { h << "<tr><th>" << esc(k) << "</th><td>" << v << "</td></tr>\n"; };
  row("model", esc(r.model));
  row("config", esc(r.config.name) + " (" + esc(r.config.source_file) + ")");
  row("requant form", esc(r.form.name));
  row("input", esc(r.input_description));
  row("verdict", ok ? "<span class=\"ok\" id=\"verdict\">every difference explained</span>"
                    : "<span class=\"bad\" id=\"verdict\">UNEXPLAINED differences</span>");
  for (const CrossCheck* k : {&r.float32, &r.float64})
    row(k->dtype, std::to_string(k->total_elements) + " elements in " + std::to_string(k->layers.size()) + " layers, " +
                      std::to_string(k->total_differing) + " differ, " + std::to_string(k->total_explained) + " explained, " +
                      std::to_string(k->total_unexplained) + " unexplained");
  const OutputReport& o = c.output;
  if (o.kind == "affine")
    row("logits", "max |float32 - integer| on the float inputs " + num(o.max_abs_diff) + " (float error bound " + num(o.bound) + ": " +
                      (o.within_bound ? "within" : "<span class=\"bad\">EXCEEDED</span>") + "); argmax float " + std::to_string(o.float_argmax) +
                      ", integer " + std::to_string(o.integer_argmax) + (o.argmax_agrees ? "" : " (differ)"));
  else if (o.kind == "hadamard")
    row("logits", "Hadamard, argmax only: float " + std::to_string(o.float_argmax) + ", integer " + std::to_string(o.integer_argmax) +
                      (o.argmax_agrees ? "" : " (differ)"));
  if (r.optimized.ran)
    row("optimized backend", std::to_string(r.optimized.differing_nodes) + " of " + std::to_string(r.optimized.nodes) +
                                 " nodes differ from the reference" + (r.optimized.first_difference.empty() ? "" : "; first: " + esc(r.optimized.first_difference)));
  else if (!r.optimized.skipped_because.empty())
    row("optimized backend", "not run: " + esc(r.optimized.skipped_because));
  if (!r.harmonized.empty()) row("harmonization", std::to_string(r.harmonized.size()) + " quantizers inserted");
  std::string notes;
  for (const std::string& n : r.notes) notes += esc(n) + "<br>";
  for (const std::string& w : r.config.warnings) notes += "config: " + esc(w) + "<br>";
  if (!notes.empty()) row("notes", notes);
  std::string times;
  for (const auto& [stage, s] : r.seconds) times += (times.empty() ? "" : ", ") + esc(stage) + " " + num(s) + " s";
  row("time", times);
  h << "</table>\n";

  // Plots (drawn by the script from the embedded data).
  h << "<h2>Differing elements per layer (" << esc(c.dtype) << " fake-quant vs integer reference)</h2>\n"
    << "<p class=\"note\">Layers with at least one differing element, stacked by class: <b>boundary</b> (float error at a rounding "
       "boundary), <b>form</b> (the requant form within its proven bound), <b>propagated</b> (from an explained difference upstream), "
       "<b>unexplained</b> (including values off their grid).</p>\n<div id=\"bars\"></div>\n";
  h << "<h2>|float - integer| in LSB</h2>\n<p class=\"note\">Counts of elements by their distance in output LSBs (0 = equal; log "
       "scale), over all layers and for each layer with differences.</p>\n<div id=\"hist-total\"></div>\n<div id=\"hists\" class=\"hists\"></div>\n";
  const LayerReport* worst = nullptr;
  for (const LayerReport& l : c.layers)
    if (!l.channel_position_counts.empty()) worst = &l;
  h << "<h2>Channel by position: the worst layer";
  if (worst) h << " (" << esc(worst->layer) << ", " << worst->differing << " of " << worst->elements << " elements differ)";
  h << "</h2>\n<p class=\"note\">Differing elements per channel (rows) and spatial position (columns, h * W + w, at most 64 "
       "columns: each sums neighbouring positions), summed over the batch.</p>\n<div id=\"heatmap\"></div>\n<div id=\"heatinfo\"></div>\n";

  // Explanations.
  h << "<h2>Explanations</h2>\n";
  bool any_boundary = false;
  for (const LayerReport& l : c.layers)
    if (l.first_boundary) {
      h << "<h3>First explained difference (float error at a rounding boundary)</h3>\n<pre class=\"boundary\">"
        << esc(detail_text("first boundary case", *l.first_boundary)) << "</pre>\n";
      any_boundary = true;
      break;
    }
  if (!any_boundary) h << "<p>No boundary case.</p>\n";
  int unexplained_blocks = 0;
  for (const CrossCheck* k : {&r.float32, &r.float64})
    for (const LayerReport& l : k->layers) {
      if (l.unexplained == 0) continue;
      ++unexplained_blocks;
      h << "<h3 class=\"bad\">UNEXPLAINED (" << esc(k->dtype) << "): " << l.unexplained << " elements in " << esc(l.layer) << "</h3>\n";
      if (l.off_grid) h << "<p>" << l.off_grid << " float values are not on the layer's grid.</p>\n";
      if (!l.convention.empty()) h << "<p>" << esc(l.convention) << "</p>\n";
      for (const ElementDetail& d : l.unexplained_details) h << "<pre class=\"unexplained\">" << esc(detail_text("unexplained", d)) << "</pre>\n";
      const int64_t shown = static_cast<int64_t>(l.unexplained_details.size()), with_detail = l.unexplained - l.off_grid;
      if (with_detail > shown) h << "<p class=\"note\">... and " << with_detail - shown << " more in this layer (the first " << shown << " are shown).</p>\n";
    }
  if (!o.within_bound) h << "<h3 class=\"bad\">UNEXPLAINED: the logits exceed the float error bound</h3>\n";
  if (unexplained_blocks == 0 && o.within_bound) h << "<p>No unexplained difference.</p>\n";

  // The whole table.
  h << "<h2>Every layer (" << esc(c.dtype) << ")</h2>\n<details><summary>" << c.layers.size() << " quantized layers</summary>\n"
    << "<table class=\"layers\"><tr><th>layer</th><th>elements</th><th>differ</th><th>max LSB</th><th>boundary</th><th>form</th>"
       "<th>propagated</th><th>unexplained</th></tr>\n";
  for (const LayerReport& l : c.layers)
    h << "<tr><td>" << esc(l.layer) << "</td><td>" << l.elements << "</td><td>" << l.differing << "</td><td>" << l.max_lsb << "</td><td>" << l.boundary
      << "</td><td>" << l.form << "</td><td>" << l.propagated << "</td><td>" << l.unexplained << "</td></tr>\n";
  h << "</table></details>\n";

  // The data for the plots: JSON with every '<' escaped, so no "</script>" can end the element early.
  std::string data = plot_data(c).dump(-1, ' ', true);
  std::string safe;
  safe.reserve(data.size());
  for (char ch : data) safe += ch == '<' ? std::string("\\u003c") : std::string(1, ch);
  h << "<script type=\"application/json\" id=\"qv-data\">" << safe << "</script>\n<script>" << kScript << "</script>\n</body></html>\n";
  return h.str();
}

void write_html_report(const std::string& path, const PipelineResult& r) {
  namespace fs = std::filesystem;
  const std::string doc = html_report(r);
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp" + std::to_string(::getpid()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw InputError(path, "", std::string("cannot write the HTML report: ") + std::strerror(errno));
    f.write(doc.data(), static_cast<std::streamsize>(doc.size()));
    f.flush();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw InputError(path, "", "cannot write the HTML report (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw InputError(path, "", "cannot write the HTML report: " + ec.message());
  }
}

}  // namespace qv::harness
