#include "cli/trace_summary.h"

#include <algorithm>
#include <cstdio>

#include "ir/crc32.h"

namespace qv::cli {

std::vector<LayerSummary> summarize(const Network& net, const Trace& trace) {
  std::vector<LayerSummary> rows;
  for (const TraceEntry& e : trace) {
    const Node* node = net.find(e.node);
    LayerSummary s;
    s.node = e.node;
    s.op = node ? std::string(to_string(node->kind())) : "?";
    s.shape = to_string(e.value.shape);
    s.type = e.value.type.name();
    if (!e.value.data.empty()) {
      const auto [mn, mx] = std::minmax_element(e.value.data.begin(), e.value.data.end());
      s.min = *mn;
      s.max = *mx;
      const int64_t lo = e.value.type.min(), hi = e.value.type.max();
      // 0 of an unsigned type is the ReLU floor, not saturation; a signed type saturates at both ends.
      const bool both_ends = e.value.type.is_signed;
      const auto sat = std::count_if(e.value.data.begin(), e.value.data.end(),
                                     [&](int64_t v) { return v == hi || (both_ends && v == lo); });
      s.saturated = static_cast<double>(sat) / static_cast<double>(e.value.data.size());
    }
    char hex[16];
    std::snprintf(hex, sizeof hex, "%08x", crc32_of_values(e.value.data));
    s.crc32 = hex;
    rows.push_back(std::move(s));
  }
  return rows;
}

void print_table(std::ostream& out, const std::vector<LayerSummary>& rows) {
  size_t wn = 4, wo = 2, ws = 5;
  for (const auto& r : rows) {
    wn = std::max(wn, r.node.size());
    wo = std::max(wo, r.op.size());
    ws = std::max(ws, r.shape.size());
  }
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %-7s  %12s  %12s  %6s  %-8s\n", static_cast<int>(wn), "node",
                static_cast<int>(wo), "op", static_cast<int>(ws), "shape", "type", "min", "max", "sat%", "crc32");
  out << line;
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %-7s  %12lld  %12lld  %6.2f  %-8s\n", static_cast<int>(wn),
                  r.node.c_str(), static_cast<int>(wo), r.op.c_str(), static_cast<int>(ws), r.shape.c_str(), r.type.c_str(),
                  static_cast<long long>(r.min), static_cast<long long>(r.max), 100.0 * r.saturated, r.crc32.c_str());
    out << line;
  }
}

nlohmann::ordered_json to_json(const std::vector<LayerSummary>& rows) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const auto& r : rows)
    a.push_back({{"node", r.node}, {"op", r.op}, {"shape", r.shape}, {"type", r.type}, {"min", r.min}, {"max", r.max},
                 {"saturated_fraction", r.saturated}, {"crc32", r.crc32}});
  return a;
}

}  // namespace qv::cli
