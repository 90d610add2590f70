// qverify check DIR [--junit FILE]: the CI regression check of a golden-vector directory. Verifies
// every file's SHA-256 and CRC-32 against the manifest, then recomputes every run with the pipeline
// from the manifest's model, config, seed and inputs and compares every file bit for bit.
#include <boost/program_options.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/positional_dir.h"
#include "cli/exit_codes.h"
#include "ir/error.h"
#include "vectors/golden.h"
#include "vectors/sha256.h"
#include "vectors/vectors_run.h"

namespace qv::cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "", "cannot open file");
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string multi_index(const std::vector<int64_t>& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) s += (d ? ", " : "") + std::to_string(idx[d]);
  return s + "]";
}

// Compares the recomputed files with the directory's, remembering the first difference per node.
class CompareSink : public vectors::Sink {
 public:
  CompareSink(std::string dir, const json& manifest_run) : dir_(std::move(dir)), run_(manifest_run) {}

  void file(const std::string& node, const std::string& rel, const std::string& bytes, const IntTensor* values) override {
    node_of_file_[rel] = node;
    const fs::path p = fs::path(dir_) / rel;
    if (!fs::is_regular_file(p)) {
      drift(node, rel + ": recomputed, but the directory does not have it");
      return;
    }
    const std::string have = read_all(p.string());
    if (have == bytes) return;
    std::string what = rel + ": differs";
    // The first differing element, read back from the stored file in its own format.
    const std::string ext = p.extension().string().substr(1);
    const json* tensor = nullptr;
    if (run_.contains("tensors"))
      for (const auto& [k, t] : run_.at("tensors").items())
        if (t.contains("files") && t.at("files").contains(ext) && t.at("files").at(ext) == rel) tensor = &t;
    if (values && tensor) {
      try {
        const auto f = vectors::parse_formats(ext);
        const std::vector<int64_t> stored = vectors::decode_tensor_file(f.at(0), have, *tensor, p.string());
        const size_t n = std::min(stored.size(), values->data.size());
        size_t i = 0;
        while (i < n && stored[i] == values->data[i]) ++i;
        if (i < n)
          what = rel + ": element " + multi_index(values->shape, static_cast<int64_t>(i)) + " (flat " + std::to_string(i) + "): stored " +
                 std::to_string(stored[i]) + ", recomputed " + std::to_string(values->data[i]);
        else if (stored.size() != values->data.size())
          what = rel + ": " + std::to_string(stored.size()) + " elements stored, " + std::to_string(values->data.size()) + " recomputed";
        else
          what = rel + ": same integers, different bytes";
      } catch (const std::exception&) {
      }
    }
    if (what == rel + ": differs") {
      size_t i = 0;
      while (i < have.size() && i < bytes.size() && have[i] == bytes[i]) ++i;
      what += " from byte " + std::to_string(i);
    }
    drift(node, what);
  }

  void drift(const std::string& node, const std::string& what) {
    ++count_[node];
    if (!first_.count(node)) first_[node] = what;
  }
  const std::map<std::string, std::string>& first() const { return first_; }
  const std::map<std::string, int>& count() const { return count_; }
  const std::map<std::string, std::string>& node_of_file() const { return node_of_file_; }

 private:
  std::string dir_;
  const json& run_;
  std::map<std::string, std::string> first_, node_of_file_;
  std::map<std::string, int> count_;
};

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') o += ' ';
        else o.push_back(c);
    }
  }
  return o;
}

struct Case {
  std::string suite, name, failure;
};

void write_junit(const std::string& path, const std::vector<Case>& cases) {
  std::map<std::string, std::vector<const Case*>> suites;
  std::vector<std::string> order;
  int failures = 0;
  for (const Case& c : cases) {
    if (!suites.count(c.suite)) order.push_back(c.suite);
    suites[c.suite].push_back(&c);
    failures += c.failure.empty() ? 0 : 1;
  }
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o << "<testsuites name=\"qverify check\" tests=\"" << cases.size() << "\" failures=\"" << failures << "\">\n";
  for (const std::string& s : order) {
    int f = 0;
    for (const Case* c : suites[s]) f += c->failure.empty() ? 0 : 1;
    o << "  <testsuite name=\"" << xml_escape(s) << "\" tests=\"" << suites[s].size() << "\" failures=\"" << f << "\" errors=\"0\">\n";
    for (const Case* c : suites[s]) {
      o << "    <testcase classname=\"" << xml_escape(s) << "\" name=\"" << xml_escape(c->name) << "\"";
      if (c->failure.empty()) {
        o << "/>\n";
      } else {
        o << ">\n      <failure message=\"" << xml_escape(c->failure) << "\">" << xml_escape(c->failure) << "</failure>\n    </testcase>\n";
      }
    }
    o << "  </testsuite>\n";
  }
  o << "</testsuites>\n";
  std::ofstream f(path, std::ios::binary);
  f << o.str();
  if (!f) throw InputError(path, "", "cannot write the JUnit report");
}

}  // namespace

int command_check_dir(const Args& args) {
  std::string dir, junit;
  bool optimized = false;
  po::options_description opts("qverify check DIR [--junit FILE] [--optimized]: verify a golden-vector directory and recompute it");
  opts.add_options()
      ("help,h", "this help")
      ("junit", po::value(&junit), "write a JUnit XML report (one testcase per layer)")
      ("threads", po::value<int>()->default_value(2), "threads")
      ("optimized", po::bool_switch(&optimized), "also run the optimized backend and require it to equal the reference");
  const po::variables_map vm = parse_with_dir(args, opts, dir);
  if (vm.count("help")) {
    std::cout << opts;
    return kAgree;
  }
  if (dir.empty()) {
    std::ostringstream s;
    s << "expected DIR\n" << opts;
    throw UsageError(s.str());
  }
  std::string bytes;
  const json m = vectors::load_manifest(dir, &bytes);
  const std::string mpath = (fs::path(dir) / vectors::kManifestName).string();
  std::vector<Case> cases;

  // 1. Checksums.
  const auto problems = vectors::verify_checksums(dir, m, bytes);
  size_t n_files = 0;
  for (const json& r : m.at("runs")) n_files += r.at("files").size();
  if (!problems.empty()) {
    for (const auto& p : problems) std::printf("FAIL %s: %s\n", (fs::path(dir) / p.file).string().c_str(), p.what.c_str());
    std::printf("checksums: %zu problem(s) in %s; not recomputed\n", problems.size(), dir.c_str());
    if (!junit.empty()) {
      cases.push_back({"checksums", "manifest and files", problems[0].file + ": " + problems[0].what +
                                                              (problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more)" : "")});
      write_junit(junit, cases);
    }
    return kMismatch;
  }
  std::printf("checksums: %zu files and the manifest match\n", n_files);
  cases.push_back({"checksums", "manifest and files", ""});

  // 2. Recompute every run and compare.
  vectors::Job job = vectors::job_from_manifest(m, mpath);
  job.threads = vm["threads"].as<int>();
  job.run_optimized = optimized;
  int drifting = 0, layers = 0;
  bool header_drift = false;
  for (const json& run : m.at("runs")) {
    const std::string id = run.at("id").get<std::string>();
    const json& input = run.at("input");
    std::string pixels;
    if (input.value("kind", "") == "file") pixels = (fs::path(dir) / input.value("copy", "")).string();
    std::fprintf(stderr, "qverify: recomputing %s...\n", id.c_str());
    CompareSink sink(dir, run);
    const vectors::RunResult r = vectors::run_and_emit(job, input, pixels, sink, [](const std::string& s) { std::fprintf(stderr, "qverify:   %s...\n", s.c_str()); });
    if (r.config_sha256 != m.at("config").at("sha256").get<std::string>()) {
      std::printf("DRIFT config: %s has SHA-256 %s, the manifest records %s\n", r.config_file.c_str(), r.config_sha256.c_str(),
                  m.at("config").at("sha256").get<std::string>().c_str());
      header_drift = true;
    }
    if (!r.optimized_difference.empty()) {
      std::printf("DRIFT %s: the optimized backend differs from the reference: %s\n", id.c_str(), r.optimized_difference.c_str());
      header_drift = true;
    }
    // The manifest's description of the run against the recomputed one.
    CompareSink& s = sink;
    if (r.entry != run) {
      for (const json& op : json::diff(run, r.entry)) {
        const std::string path = op.at("path").get<std::string>();
        std::string node;
        // /nodes/<i>/..., /tensors/<key>/..., /files/<rel>/...
        std::vector<std::string> parts;
        std::stringstream ss(path.substr(1));
        for (std::string p; std::getline(ss, p, '/');) parts.push_back(p);
        auto unescape = [](std::string x) {
          for (size_t at; (at = x.find("~1")) != std::string::npos;) x.replace(at, 2, "/");
          for (size_t at; (at = x.find("~0")) != std::string::npos;) x.replace(at, 2, "~");
          return x;
        };
        if (parts.size() >= 2 && parts[0] == "nodes" && run.at("nodes").size() > std::stoul(parts[1]))
          node = run.at("nodes").at(std::stoul(parts[1])).value("name", "");
        else if (parts.size() >= 2 && parts[0] == "tensors" && run.at("tensors").contains(unescape(parts[1])))
          node = run.at("tensors").at(unescape(parts[1])).value("node", "");
        else if (parts.size() >= 2 && parts[0] == "files" && s.node_of_file().count(unescape(parts[1])))
          node = s.node_of_file().at(unescape(parts[1]));
        const std::string what = "manifest entry " + path + " differs from the recomputed one (" + op.at("op").get<std::string>() + ")";
        if (node.empty()) {
          std::printf("DRIFT %s: %s\n", id.c_str(), what.c_str());
          header_drift = true;
        } else {
          s.drift(node, what);
        }
      }
    }
    std::printf("%-8s %-44s %-15s %s\n", "input", "layer", "op", "status");
    for (const json& n : r.entry.at("nodes")) {
      const std::string name = n.at("name").get<std::string>();
      ++layers;
      const auto f = s.first().find(name);
      std::string failure;
      if (f != s.first().end()) {
        ++drifting;
        failure = f->second;
        const int more = s.count().at(name) - 1;
        if (more > 0) failure += " (and " + std::to_string(more) + " more file(s) of this layer)";
      }
      std::printf("%-8s %-44s %-15s %s\n", id.c_str(), name.c_str(), n.at("op").get<std::string>().c_str(),
                  failure.empty() ? "ok" : ("DRIFT " + failure).c_str());
      cases.push_back({id, name, failure});
    }
  }
  if (!junit.empty()) write_junit(junit, cases);
  if (drifting > 0 || header_drift) {
    std::printf("verdict: DRIFT in %d of %d layers%s\n", drifting, layers, header_drift ? " (and in the run descriptions)" : "");
    return kMismatch;
  }
  std::printf("verdict: no drift: %d layers of %zu input(s) recomputed bit for bit\n", layers, m.at("runs").size());
  return kAgree;
}

}  // namespace qv::cli
