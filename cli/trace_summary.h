// A one-line-per-node summary of a trace: what a hardware engineer scans first (shape, type, range,
// how much of the type is used, a CRC-32 of the values to compare runs at a glance).
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "ir/network.h"
#include "ir/trace.h"

namespace qv::cli {

struct LayerSummary {
  std::string node, op, shape, type;
  int64_t min = 0, max = 0;
  double saturated = 0;  // fraction at the type's max (or min, for signed types)
  std::string crc32;     // of the values as little-endian int64, hex
};

std::vector<LayerSummary> summarize(const Network& net, const Trace& trace);
void print_table(std::ostream& out, const std::vector<LayerSummary>& rows);
nlohmann::ordered_json to_json(const std::vector<LayerSummary>& rows);

}  // namespace qv::cli
