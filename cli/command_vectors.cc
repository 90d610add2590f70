// qverify vectors: golden test vectors of every IR node for one or many inputs (docs/vectors.md).
// qverify vectors-merge OUT DIR...: verify shards written with --shard i/N and merge them.
#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "ir/error.h"
#include "vectors/atomic_dir.h"
#include "vectors/golden.h"
#include "vectors/sha256.h"
#include "vectors/vectors_run.h"

namespace qv::cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Writes every file into the temporary directory. QVERIFY_VECTORS_FAIL_AFTER=N (tests) makes the
// (N+1)-th file fail, as a full disk or a crash would.
class WriterSink : public vectors::Sink {
 public:
  explicit WriterSink(vectors::AtomicDir& dir) : dir_(dir) {
    if (const char* s = std::getenv("QVERIFY_VECTORS_FAIL_AFTER")) fail_after_ = std::atoll(s);
  }
  void file(const std::string&, const std::string& rel, const std::string& bytes, const IntTensor*) override { write(rel, bytes); }
  void write(const std::string& rel, const std::string& bytes) {
    if (fail_after_ >= 0 && files_ >= fail_after_)
      throw std::runtime_error("simulated failure after " + std::to_string(files_) + " files (QVERIFY_VECTORS_FAIL_AFTER)");
    dir_.write_file(rel, bytes);
    ++files_;
    bytes_ += static_cast<int64_t>(bytes.size());
  }
  int64_t files() const { return files_; }
  int64_t bytes() const { return bytes_; }

 private:
  vectors::AtomicDir& dir_;
  int64_t fail_after_ = -1, files_ = 0, bytes_ = 0;
};

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "", "cannot open file");
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

int command_vectors(const Args& args) {
  vectors::Job job;
  std::string out, formats = "npy", layout = "nchw", shard;
  int64_t seed = 0;
  std::vector<std::string> inputs, files;
  po::options_description opts(
      "qverify vectors --model M --config C --out DIR [--formats npy,hex,bin,csv,h] [--seed N] [--resolution R]\n"
      "                [--requant F] [--inputs N | FILES...] [--layout nchw|nhwc] [--shard i/N] [--force]");
  opts.add_options()
      ("help,h", "this help")
      ("model", po::value(&job.model), "network (as for the cross-check)")
      ("config", po::value(&job.config), "quantization config: a shipped name or a file")
      ("out", po::value(&out), "the directory to write (must not exist, or be empty, unless --force)")
      ("formats", po::value(&formats)->default_value("npy"), "comma-separated: npy, hex ($readmemh), bin, csv, h (C header)")
      ("seed", po::value(&seed)->default_value(0), "seed of the weights; seeded inputs use seed, seed+1, ...")
      ("resolution", po::value(&job.resolution)->default_value(224), "input resolution")
      ("width-mult", po::value(&job.width_mult)->default_value(1.0), "width multiplier (MobileNets)")
      ("requant", po::value(&job.requant), "requantization form that runs (default: the config's)")
      ("inputs", po::value(&inputs)->multitoken(), "N seeded inputs, or .npy files of uint8 pixels")
      ("layout", po::value(&layout)->default_value("nchw"), "nchw, or nhwc (activations NHWC, conv weights OHWI)")
      ("shard", po::value(&shard), "i/N: only inputs k with k mod N == i (a job array's share)")
      ("threads", po::value(&job.threads)->default_value(2), "threads")
      ("optimized", "also run the optimized backend and fail (exit 1) when it differs from the reference")
      ("force", "replace an existing non-empty --out directory");
  po::options_description hidden;
  hidden.add_options()("file", po::value(&files)->multitoken(), "input files");
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("file", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << opts;
    return kAgree;
  }
  auto usage = [&](const std::string& what) {
    std::ostringstream s;
    s << what << "\n" << opts;
    return UsageError(s.str());
  };
  if (job.config.empty()) throw usage("--config is required");
  if (out.empty()) throw usage("--out is required");
  if (seed < 0) throw usage("--seed must be >= 0");
  if (job.resolution < 32 || job.resolution > 1024) throw usage("--resolution must be in [32, 1024]");
  if (!(job.width_mult > 0 && job.width_mult <= 4)) throw usage("--width-mult must be in (0, 4]");
  if (job.threads < 1 || job.threads > 256) throw usage("--threads must be in [1, 256]");
  try {
    job.emit.formats = vectors::parse_formats(formats);
  } catch (const std::invalid_argument& e) {
    throw usage(std::string("--formats: ") + e.what());
  }
  if (layout == "nchw" || layout == "NCHW") job.emit.layout = "NCHW";
  else if (layout == "nhwc" || layout == "NHWC") job.emit.layout = "NHWC";
  else throw usage("--layout must be nchw or nhwc");
  job.seed = static_cast<uint64_t>(seed);
  job.run_optimized = vm.count("optimized") > 0;
  int64_t shard_i = 0, shard_n = 1;
  if (!shard.empty()) {
    const auto slash = shard.find('/');
    if (slash == std::string::npos || !all_digits(shard.substr(0, slash)) || !all_digits(shard.substr(slash + 1)))
      throw usage("--shard must be i/N with integers 0 <= i < N");
    shard_i = std::stoll(shard.substr(0, slash));
    shard_n = std::stoll(shard.substr(slash + 1));
    if (shard_n < 1 || shard_i >= shard_n) throw usage("--shard must be i/N with integers 0 <= i < N");
  }
  // The inputs: N seeded ones, or files.
  json input_list = json::array();
  if (inputs.size() == 1 && all_digits(inputs[0])) {
    if (!files.empty()) throw usage("give --inputs N or input FILES, not both");
    const int64_t n = std::stoll(inputs[0]);
    if (n < 1 || n > 100000) throw usage("--inputs N must be in [1, 100000]");
    for (int64_t k = 0; k < n; ++k) input_list.push_back({{"index", k}, {"kind", "seed"}, {"seed", job.seed + static_cast<uint64_t>(k)}});
  } else {
    files.insert(files.begin(), inputs.begin(), inputs.end());
    if (files.empty()) input_list.push_back({{"index", 0}, {"kind", "seed"}, {"seed", job.seed}});
    for (size_t k = 0; k < files.size(); ++k) {
      if (fs::path(files[k]).extension() != ".npy") throw InputError(files[k], "", "expected a .npy file of uint8 pixels");
      input_list.push_back({{"index", k}, {"kind", "file"}, {"path", files[k]}, {"sha256", qv::sha256_hex(read_all(files[k]))},
                            {"copy", vectors::run_id(static_cast<int64_t>(k)) + "/input.pixels.npy"}});
    }
  }
  std::vector<json> mine;
  for (const json& in : input_list)
    if (in.at("index").get<int64_t>() % shard_n == shard_i) mine.push_back(in);
  if (mine.empty()) throw usage("--shard " + shard + " selects none of the " + std::to_string(input_list.size()) + " inputs");

  vectors::AtomicDir dir(out, vm.count("force") > 0);
  WriterSink sink(dir);
  json runs = json::array();
  vectors::RunResult first;
  for (size_t i = 0; i < mine.size(); ++i) {
    const json& in = mine[i];
    std::fprintf(stderr, "qverify: input %lld (%zu of %zu)\n", static_cast<long long>(in.at("index").get<int64_t>()), i + 1, mine.size());
    vectors::RunResult r = vectors::run_and_emit(job, in, "", sink, [](const std::string& s) { std::fprintf(stderr, "qverify:   %s...\n", s.c_str()); });
    if (!r.optimized_difference.empty()) {
      std::fprintf(stderr, "qverify: the optimized backend differs from the reference on input %lld: %s\nno vectors written\n",
                   static_cast<long long>(in.at("index").get<int64_t>()), r.optimized_difference.c_str());
      return kMismatch;
    }
    if (i > 0 && (r.config_sha256 != first.config_sha256 || r.requant_form != first.requant_form))
      throw std::runtime_error("the config changed while vectors were written");
    runs.push_back(std::move(r.entry));
    if (i == 0) first = std::move(r);
  }
  json manifest = vectors::job_header(job, input_list, first);
  if (!shard.empty()) manifest["shard"] = {{"index", shard_i}, {"count", shard_n}};
  manifest["runs"] = std::move(runs);
  sink.write(vectors::kManifestName, vectors::finish_manifest(std::move(manifest)));
  dir.commit();
  std::printf("qverify: wrote %lld files (%lld bytes) for %zu input(s) to %s\n", static_cast<long long>(sink.files()),
              static_cast<long long>(sink.bytes()), mine.size(), out.c_str());
  return kAgree;
}

int command_vectors_merge(const Args& args) {
  std::vector<std::string> pos_args;
  po::options_description opts("qverify vectors-merge OUT DIR... [--force]: verify shards of `qverify vectors --shard i/N` and merge them");
  opts.add_options()("help,h", "this help")("force", "replace an existing non-empty OUT");
  po::options_description hidden;
  hidden.add_options()("dirs", po::value(&pos_args)->multitoken(), "");
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("dirs", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << opts;
    return kAgree;
  }
  if (pos_args.size() < 2) {
    std::ostringstream s;
    s << "expected OUT and at least one shard DIR\n" << opts;
    throw UsageError(s.str());
  }
  const std::string out = pos_args[0];
  const std::vector<std::string> dirs(pos_args.begin() + 1, pos_args.end());
  std::vector<json> manifests;
  bool bad = false;
  for (const std::string& d : dirs) {
    std::string bytes;
    json m = vectors::load_manifest(d, &bytes);
    const auto problems = vectors::verify_checksums(d, m, bytes);
    for (const auto& p : problems) std::fprintf(stderr, "qverify: %s: %s\n", (fs::path(d) / p.file).string().c_str(), p.what.c_str());
    bad = bad || !problems.empty();
    manifests.push_back(std::move(m));
  }
  if (bad) {
    std::fprintf(stderr, "qverify: a shard failed its checksums; nothing merged\n");
    return kMismatch;
  }
  const json header = vectors::manifest_header(manifests[0]);
  std::set<int64_t> shards_seen;
  int64_t count = -1;
  std::map<int64_t, json> runs;
  for (size_t i = 0; i < manifests.size(); ++i) {
    const std::string mpath = (fs::path(dirs[i]) / vectors::kManifestName).string();
    const json h = vectors::manifest_header(manifests[i]);
    if (h != header) {
      const json patch = json::diff(header, h);
      throw InputError(mpath, "key '" + patch.at(0).at("path").get<std::string>() + "'",
                       "differs from " + dirs[0] + "'s: the shards are not of one job");
    }
    if (!manifests[i].contains("shard")) throw InputError(mpath, "key 'shard'", "missing: not written with --shard i/N");
    const int64_t si = manifests[i]["shard"].at("index").get<int64_t>(), sn = manifests[i]["shard"].at("count").get<int64_t>();
    if (count >= 0 && sn != count) throw InputError(mpath, "key 'shard.count'", "is " + std::to_string(sn) + ", another shard says " + std::to_string(count));
    count = sn;
    if (!shards_seen.insert(si).second) throw InputError(mpath, "key 'shard.index'", "shard " + std::to_string(si) + " given twice");
    for (const json& r : manifests[i].at("runs")) {
      const int64_t k = r.at("index").get<int64_t>();
      if (k % sn != si) throw InputError(mpath, "runs", "input " + std::to_string(k) + " does not belong to shard " + std::to_string(si));
      if (!runs.emplace(k, r).second) throw InputError(mpath, "runs", "input " + std::to_string(k) + " appears in two shards");
    }
  }
  for (int64_t s = 0; s < count; ++s)
    if (!shards_seen.count(s)) throw InputError(out, "", "shard " + std::to_string(s) + "/" + std::to_string(count) + " is missing");
  const size_t n_inputs = header.at("inputs").size();
  if (runs.size() != n_inputs) throw InputError(out, "", "the shards hold " + std::to_string(runs.size()) + " of " + std::to_string(n_inputs) + " inputs");

  vectors::AtomicDir dir(out, vm.count("force") > 0);
  WriterSink sink(dir);
  json merged = header;
  merged["runs"] = json::array();
  for (size_t i = 0; i < manifests.size(); ++i)
    for (const json& r : manifests[i].at("runs"))
      for (const auto& [rel, f] : r.at("files").items()) sink.write(rel, read_all((fs::path(dirs[i]) / rel).string()));
  for (auto& [k, r] : runs) merged["runs"].push_back(r);
  sink.write(vectors::kManifestName, vectors::finish_manifest(std::move(merged)));
  dir.commit();
  std::printf("qverify: merged %zu shard(s), %zu input(s), %lld files into %s\n", dirs.size(), runs.size(),
              static_cast<long long>(sink.files()), out.c_str());
  return kAgree;
}

}  // namespace qv::cli
