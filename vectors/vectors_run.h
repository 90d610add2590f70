// The glue between the pipeline (harness/pipeline.h) and golden-vector emission (vectors/golden.h),
// shared by `qverify vectors`, `qverify check DIR` and `qverify vectors-merge`. Compiled into the
// qverify executable only (it runs the pipeline); the vectors library itself stays free of it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vectors/golden.h"

namespace qv::vectors {

// What every run of a vectors directory shares (the manifest header).
struct Job {
  std::string model;        // as given
  std::string config;       // as given: a shipped name or a path
  uint64_t seed = 0;
  int resolution = 224;
  double width_mult = 1.0;
  std::string requant;      // as given; empty: the config's
  int threads = 2;
  bool run_optimized = false;
  EmitOptions emit;
};

// One input: {"index": k, "kind": "seed", "seed": s} or {"index": k, "kind": "file", "path": P,
// "sha256": H, "copy": "inKKKK/input.pixels.npy"}. `pixels_path` overrides where a file input is read
// from (check reads the copy inside the directory).
struct RunResult {
  nlohmann::json entry;          // the manifest's run entry
  std::string config_file;       // the config actually read
  std::string config_sha256;
  std::string config_scheme;     // the config's own name ("pact")
  std::string requant_form;      // the form that ran ("exact", "mulshift:24")
  std::string optimized_difference;  // non-empty when run_optimized and the optimized backend differs
};
RunResult run_and_emit(const Job& job, const nlohmann::json& input, const std::string& pixels_path, Sink& sink,
                       const std::function<void(const std::string&)>& progress);

// The manifest header of a job and its inputs (everything but runs and shard).
nlohmann::json job_header(const Job& job, const nlohmann::json& inputs, const RunResult& first);
// The Job a manifest describes (throws InputError naming the key).
Job job_from_manifest(const nlohmann::json& manifest, const std::string& manifest_path);

// The integers of a tensor file in any format, given the tensor's manifest entry. Throws InputError.
std::vector<int64_t> decode_tensor_file(Format f, const std::string& bytes, const nlohmann::json& tensor, const std::string& path);

}  // namespace qv::vectors
