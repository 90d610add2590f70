// `qverify compare DIR --actual DUMP`: a hardware / RTL dump against a golden-vector directory
// (docs/compare.md). Reads every layer the dump holds, compares it with the golden output of that
// node bit for bit, reports the first diverging layer and element with its whole computation, and
// diagnoses the convention the hardware follows over all differing elements of that layer. Plain C++.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vectors/explain.h"
#include "vectors/formats.h"

namespace qv::vectors {

struct CompareOptions {
  std::optional<Format> format;  // empty: whichever of npy, hex, csv, bin the dump has (in that order)
  std::string run;               // run id ("in0000"); empty: the first run
  size_t max_terms = 32;         // text output: the window's largest terms shown
};

struct LayerComparison {
  std::string node, op;
  std::string file;              // the dump file read ("" when the dump has no file for this node)
  std::string format;
  int64_t elements = 0, differing = 0;
  bool permuted_shape = false;   // .npy in the other rank-4 layout's shape
  // The first differing element (stated layout of the golden tensor).
  std::vector<int64_t> first_index;
  int64_t first_flat = -1, expected = 0, actual = 0;
};

struct Diagnosis {
  std::string kind;     // "rounding", "saturation", "shift", "transposed", "channel", "unexplained"
  std::string message;  // one sentence
  nlohmann::json detail;
};

struct CompareReport {
  std::string dir, dump, run;
  std::vector<LayerComparison> layers;   // every node in network order
  int64_t compared = 0;                  // layers the dump holds
  std::optional<size_t> first;           // position in `layers` of the first diverging layer
  std::optional<ElementComputation> element;  // the first differing element's computation
  Diagnosis diagnosis;
  std::vector<std::string> ignored;      // dump files that are no layer output

  bool ok() const { return !first.has_value(); }
  nlohmann::json to_json() const;
  std::string to_text(size_t max_terms) const;
};

// Throws InputError (exit 2) for a missing or unreadable dump, a golden directory whose checksums
// fail, a layer file of the wrong size or shape, or a dump with no layer file at all.
CompareReport compare_dump(const std::string& dir, const std::string& dump, const CompareOptions& options);

// The diagnosis of one layer given its golden and actual values in the stated layout (exposed for
// tests). `run` supplies the requantization of requant nodes.
Diagnosis diagnose_layer(GoldenRun& run, const std::string& node, const std::vector<int64_t>& expected,
                         const std::vector<int64_t>& actual);

}  // namespace qv::vectors
