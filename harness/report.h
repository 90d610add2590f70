// The cross-check report: a terminal table (one row per quantized layer, then the explanation of the
// first boundary case and of every unexplained difference) and the same content as JSON.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "harness/pipeline.h"

namespace qv::harness {

void print_report(std::FILE* out, const PipelineResult& r, bool all_layers);
nlohmann::json report_json(const PipelineResult& r);

// 0 when every difference is explained and the optimized backend equals the reference, 1 otherwise.
int verdict(const PipelineResult& r);

}  // namespace qv::harness
