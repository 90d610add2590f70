// qverify explain DIR --layer NAME --index i,j,k,l [--depth N] [--run ID] [--json]: the computation
// chain of one output element from the golden vectors (docs/compare.md).
#include <boost/program_options.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/positional_dir.h"
#include "cli/exit_codes.h"
#include "ir/error.h"
#include "vectors/explain.h"
#include "vectors/golden.h"

namespace qv::cli {

namespace po = boost::program_options;

int command_explain(const Args& args) {
  std::string dir, layer, index, run;
  bool as_json = false;
  int depth = 1;
  size_t max_terms = 32;
  po::options_description opts("qverify explain DIR --layer NAME --index i,j,k,l [options]: how one output element is computed");
  opts.add_options()
      ("help,h", "this help")
      ("layer", po::value(&layer), "the node (IR node name, as in the manifest)")
      ("index", po::value(&index), "the element, comma-separated, in the manifest's stated layout (NCHW: n,c,h,w)")
      ("depth", po::value(&depth), "levels up to follow the largest-contribution input (default 1)")
      ("run", po::value(&run), "the run (input), e.g. in0003 (default: the first)")
      ("max-terms", po::value(&max_terms), "text output: the window's largest terms shown (default 32)")
      ("json", po::bool_switch(&as_json), "print the chain as JSON");
  const po::variables_map vm = parse_with_dir(args, opts, dir);
  if (vm.count("help")) {
    std::cout << opts;
    return kAgree;
  }
  if (dir.empty() || layer.empty() || index.empty()) {
    std::ostringstream s;
    s << "expected DIR, --layer NAME and --index i,j,...\n" << opts;
    throw UsageError(s.str());
  }
  if (depth < 0 || depth > 64) throw UsageError("--depth: expected 0..64");
  std::vector<int64_t> idx;
  {
    std::stringstream ss(index);
    for (std::string part; std::getline(ss, part, ',');) {
      try {
        size_t used = 0;
        idx.push_back(std::stoll(part, &used));
        if (used != part.size()) throw std::invalid_argument(part);
      } catch (const std::exception&) {
        throw UsageError("--index: '" + part + "' is not an integer (expected i,j,k,l)");
      }
    }
  }
  const nlohmann::json m = vectors::load_manifest(dir);
  size_t position = 0;
  if (!run.empty()) {
    bool found = false;
    for (size_t i = 0; i < m.at("runs").size(); ++i)
      if (m.at("runs")[i].at("id") == run) position = i, found = true;
    if (!found) throw InputError((std::filesystem::path(dir) / vectors::kManifestName).string(), "runs", "no run '" + run + "'");
  }
  vectors::GoldenRun g(dir, m, position);
  const auto& entry = g.output_entry(layer);
  if (idx.size() != entry.at("shape").size())
    throw InputError(layer, "--index", std::to_string(idx.size()) + " indices, expected " + std::to_string(entry.at("shape").size()) + " (shape " +
                                           entry.at("shape").dump() + ", " + entry.value("layout", "") + ")");
  const auto chain = vectors::explain_chain(g, layer, vectors::GoldenRun::to_canonical_index(entry, idx), depth);
  if (as_json) {
    nlohmann::json j;
    j["dir"] = dir;
    j["run"] = g.id();
    j["chain"] = nlohmann::json::array();
    for (const auto& e : chain) j["chain"].push_back(e.to_json());
    std::cout << j.dump(2) << "\n";
  } else {
    for (size_t i = 0; i < chain.size(); ++i) {
      if (i) std::cout << "\none level up: the largest-contribution input element is " << chain[i].node << " " << vectors::index_string(chain[i].index)
                       << "\n";
      std::cout << chain[i].to_text(max_terms, std::string(2 * i, ' '));
    }
  }
  return kAgree;
}

}  // namespace qv::cli
