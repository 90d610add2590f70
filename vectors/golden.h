// Golden test vectors: every tensor of every IR node of one evaluation, in the formats testbenches
// read, described by a manifest (docs/vectors.md). Plain C++: no LibTorch, no harness; the CLI runs
// the pipeline and hands the network, its exact lowering and the reference trace to emit_run().
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ir/network.h"
#include "ir/trace.h"
#include "vectors/formats.h"

namespace qv::vectors {

inline constexpr const char* kManifestName = "manifest.json";
inline constexpr const char* kFormatName = "qverify-vectors";
inline constexpr int kFormatVersion = 1;

// One evaluation (one input) to emit.
struct RunSpec {
  int64_t index = 0;                 // global input index: the run id is "in" + 4+ digits
  nlohmann::json input;              // how the input was made ({"kind": "seed", ...} / {"kind": "file", ...})
  const Network* network = nullptr;  // in the requant form that ran
  const Network* exact = nullptr;    // the exact lowering (same node names): alpha and delta
  const Trace* trace = nullptr;      // the reference's trace of `network`
  // Per quantized node: the real-domain grid (scale, offset) as exact rationals "p/q", one per
  // channel or one per tensor.
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>> grids;
  std::string requant_form;          // as the user named it ("exact", "mulshift:24", ...)
};

struct EmitOptions {
  std::vector<Format> formats{Format::npy};
  std::string layout = "NCHW";       // or "NHWC" (conv weights then OHWI)
  int mulshift_bits = 24;            // the shift of the emitted mul/add/shift form
};

std::string run_id(int64_t index);

// Receives every file of a run. `node` is the IR node the file belongs to, `rel` its path relative to
// the vectors directory ('/'-separated), `values` the integers when it is a tensor file.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void file(const std::string& node, const std::string& rel, const std::string& bytes, const IntTensor* values) = 0;
};

// Emits every file of one run into `sink` (in a fixed order) and returns the run's manifest entry,
// including its "files" table (bytes, sha256, crc32 of each file). Deterministic.
nlohmann::json emit_run(const RunSpec& run, const EmitOptions& options, Sink& sink);

// The manifest's bytes: `m` (keys sorted, 2-space indent, '\n' at the end) with "manifest_sha256" set
// to the SHA-256 of those same bytes in which the value is 64 '0's.
std::string finish_manifest(nlohmann::json m);
// The self-hash of manifest bytes as finish_manifest defines it; nullopt-like "" when the key is absent.
std::string manifest_self_hash(const std::string& bytes);

// Parses DIR/manifest.json and checks its schema. Throws InputError naming the manifest and the
// missing or malformed key (exit status 2). `bytes` receives the raw file.
nlohmann::json load_manifest(const std::string& dir, std::string* bytes = nullptr);

struct Problem {
  std::string file;  // relative to the directory ("manifest.json" for the manifest itself)
  std::string what;
};
// Every file's size, SHA-256 and CRC-32 against the manifest, files missing and files not listed, and
// the manifest's own hash. Empty when everything matches.
std::vector<Problem> verify_checksums(const std::string& dir, const nlohmann::json& manifest, const std::string& manifest_bytes);

// The header keys every shard and the merged directory share (everything but runs, shard, self-hash).
nlohmann::json manifest_header(const nlohmann::json& manifest);

}  // namespace qv::vectors
