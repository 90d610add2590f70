#include "harness/report.h"

namespace qv::harness {

namespace {

std::string index_string(const std::vector<int64_t>& idx) {
  std::string s = "[";
  for (size_t k = 0; k < idx.size(); ++k) s += (k ? ", " : "") + std::to_string(idx[k]);
  return s + "]";
}

void print_detail(std::FILE* out, const char* what, const ElementDetail& d) {
  std::fprintf(out, "  %s at %s%s: float network %lld, integer network %lld (re-evaluated on the float inputs: %lld)\n", what,
               d.layer.c_str(), index_string(d.index).c_str(), static_cast<long long>(d.float_q),
               static_cast<long long>(d.reference_q), static_cast<long long>(d.local_q));
  if (!d.exact_pre.empty()) {
    std::fprintf(out, "    exact pre-rounding value p = %s = %.12g LSB", d.exact_pre.c_str(), d.exact_pre_value);
    if (d.boundary) std::fprintf(out, "; %s boundary %.1f at distance %.3g LSB", d.rounding.c_str(), *d.boundary, std::fabs(d.exact_pre_value - *d.boundary));
    std::fputc('\n', out);
  }
  if (d.float_pre) std::fprintf(out, "    float pre-rounding value %.12g LSB (float error %.3g LSB)\n", *d.float_pre, *d.float_pre - d.exact_pre_value);
  if (!d.computation.empty()) std::fprintf(out, "    %s\n", d.computation.c_str());
}

nlohmann::json detail_json(const ElementDetail& d) {
  nlohmann::json j = {{"layer", d.layer}, {"index", d.index}, {"float", d.float_q}, {"integer", d.reference_q},
                      {"integer_on_float_inputs", d.local_q}, {"rounding", d.rounding}, {"computation", d.computation}};
  if (!d.exact_pre.empty()) j["exact_pre_rounding"] = d.exact_pre, j["exact_pre_rounding_value"] = d.exact_pre_value;
  if (d.boundary) j["boundary"] = *d.boundary;
  if (d.float_pre) j["float_pre_rounding_value"] = *d.float_pre;
  return j;
}

nlohmann::json check_json(const CrossCheck& c) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerReport& l : c.layers) {
    nlohmann::json j = {{"layer", l.layer}, {"elements", l.elements}, {"differing", l.differing}, {"max_lsb", l.max_lsb},
                        {"explained_boundary", l.boundary}, {"explained_form", l.form}, {"propagated", l.propagated},
                        {"unexplained", l.unexplained}, {"off_grid", l.off_grid}};
    if (l.first_unexplained) j["first_unexplained"] = detail_json(*l.first_unexplained);
    if (l.first_boundary) j["first_boundary"] = detail_json(*l.first_boundary);
    if (!l.convention.empty()) j["convention"] = l.convention;
    layers.push_back(j);
  }
  const OutputReport& o = c.output;
  return {{"dtype", c.dtype},
          {"elements", c.total_elements},
          {"differing", c.total_differing},
          {"explained", c.total_explained},
          {"unexplained", c.total_unexplained},
          {"output", {{"kind", o.kind}, {"max_abs_diff", o.max_abs_diff}, {"float_error_bound", o.bound}, {"within_bound", o.within_bound},
                      {"float_argmax", o.float_argmax}, {"integer_argmax", o.integer_argmax}, {"argmax_agrees", o.argmax_agrees}}},
          {"layers", layers}};
}

}  // namespace

int verdict(const PipelineResult& r) {
  if (r.float32.total_unexplained || r.float64.total_unexplained) return 1;
  if (r.optimized.ran && r.optimized.differing_nodes) return 1;
  return 0;
}

void print_report(std::FILE* out, const PipelineResult& r, bool all_layers) {
  std::fprintf(out, "qverify: %s under %s (%s), requant %s, input %s\n", r.model.c_str(), r.config.name.c_str(),
               r.config.source_file.c_str(), r.form.name.c_str(), r.input_description.c_str());
  for (const std::string& n : r.notes) std::fprintf(out, "  %s\n", n.c_str());
  for (const std::string& w : r.config.warnings) std::fprintf(out, "  config: %s\n", w.c_str());
  for (const std::string& l : r.rule_log) std::fprintf(out, "  rule: %s\n", l.c_str());
  if (!r.harmonized.empty()) {
    std::fprintf(out, "  harmonization inserted %zu quantizers (each changes the fake-quant function):\n", r.harmonized.size());
    for (size_t i = 0; i < r.harmonized.size(); ++i)
      if (all_layers || i < 4 || i + 1 == r.harmonized.size()) std::fprintf(out, "    %s\n", r.harmonized[i].c_str());
      else if (i == 4) std::fprintf(out, "    ... (%zu more; --all-layers lists them)\n", r.harmonized.size() - 5);
  }
  std::fprintf(out, "\n%-52s %10s %8s %4s %9s %6s %10s %11s\n", "layer (float32 fake-quant vs integer reference)", "elements",
               "differ", "lsb", "boundary", "form", "propagated", "unexplained");
  const CrossCheck& c = r.float32;
  for (const LayerReport& l : c.layers) {
    if (!all_layers && l.differing == 0) continue;
    std::fprintf(out, "%-52s %10lld %8lld %4lld %9lld %6lld %10lld %11lld\n", l.layer.c_str(), static_cast<long long>(l.elements),
                 static_cast<long long>(l.differing), static_cast<long long>(l.max_lsb), static_cast<long long>(l.boundary),
                 static_cast<long long>(l.form), static_cast<long long>(l.propagated), static_cast<long long>(l.unexplained));
  }
  if (!all_layers) std::fprintf(out, "(%zu quantized layers; layers without differences hidden, --all-layers shows them)\n", c.layers.size());
  for (const CrossCheck* k : {&r.float32, &r.float64})
    std::fprintf(out, "%s: %lld elements in %zu layers, %lld differ, %lld explained, %lld unexplained\n", k->dtype.c_str(),
                 static_cast<long long>(k->total_elements), k->layers.size(), static_cast<long long>(k->total_differing),
                 static_cast<long long>(k->total_explained), static_cast<long long>(k->total_unexplained));
  for (const LayerReport& l : c.layers)
    if (l.first_boundary) {
      print_detail(out, "first explained difference (float error at a rounding boundary)", *l.first_boundary);
      break;
    }
  for (const CrossCheck* k : {&r.float32, &r.float64})
    for (const LayerReport& l : k->layers) {
      if (l.first_unexplained) {
        std::fprintf(out, "UNEXPLAINED (%s): %lld elements in %s\n", k->dtype.c_str(), static_cast<long long>(l.unexplained), l.layer.c_str());
        print_detail(out, "first unexplained", *l.first_unexplained);
        if (!l.convention.empty()) std::fprintf(out, "    %s\n", l.convention.c_str());
      } else if (l.off_grid) {
        std::fprintf(out, "UNEXPLAINED (%s): %lld float values of %s are not on its grid\n", k->dtype.c_str(),
                     static_cast<long long>(l.off_grid), l.layer.c_str());
      }
    }
  const OutputReport& o = c.output;
  if (o.kind == "affine")
    std::fprintf(out, "logits: max |float32 - integer| on the float inputs %.3g (float error bound %.3g: %s); argmax float %lld, integer %lld%s\n",
                 o.max_abs_diff, o.bound, o.within_bound ? "within" : "EXCEEDED", static_cast<long long>(o.float_argmax),
                 static_cast<long long>(o.integer_argmax), o.argmax_agrees ? "" : " (differ)");
  else if (o.kind == "hadamard")
    std::fprintf(out, "logits (Hadamard, argmax only): float %lld, integer %lld%s\n", static_cast<long long>(o.float_argmax),
                 static_cast<long long>(o.integer_argmax), o.argmax_agrees ? "" : " (differ)");
  if (r.optimized.ran)
    std::fprintf(out, "optimized backend: %lld of %lld nodes differ from the reference%s%s\n", static_cast<long long>(r.optimized.differing_nodes),
                 static_cast<long long>(r.optimized.nodes), r.optimized.first_difference.empty() ? "" : "; first: ",
                 r.optimized.first_difference.c_str());
  std::string times;
  for (const auto& [stage, s] : r.seconds) times += (times.empty() ? "" : ", ") + stage + " " + std::to_string(s).substr(0, 5) + " s";
  std::fprintf(out, "time: %s\n", times.c_str());
  std::fprintf(out, "%s\n", verdict(r) == 0 ? "verdict: every difference explained" : "verdict: UNEXPLAINED differences");
}

nlohmann::json report_json(const PipelineResult& r) {
  nlohmann::json j;
  j["model"] = r.model;
  j["config"] = {{"name", r.config.name}, {"file", r.config.source_file}, {"warnings", r.config.warnings}};
  j["requant"] = r.form.name;
  j["input"] = r.input_description;
  j["notes"] = r.notes;
  j["harmonized"] = r.harmonized;
  j["float32"] = check_json(r.float32);
  j["float64"] = check_json(r.float64);
  j["optimized"] = {{"ran", r.optimized.ran}, {"nodes", r.optimized.nodes}, {"differing_nodes", r.optimized.differing_nodes},
                    {"differing_elements", r.optimized.differing_elements}, {"first_difference", r.optimized.first_difference},
                    {"skipped_because", r.optimized.skipped_because}};
  nlohmann::json t = nlohmann::json::object();
  for (const auto& [stage, s] : r.seconds) t[stage] = s;
  j["seconds"] = t;
  j["verdict"] = verdict(r) == 0 ? "explained" : "unexplained";
  return j;
}

}  // namespace qv::harness
