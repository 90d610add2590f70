// qverify run: evaluate an integer network with the reference and print its per-layer trace.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/network_source.h"
#include "cli/trace_summary.h"
#include "ir/serialize.h"
#include "reference/evaluator.h"

namespace po = boost::program_options;

namespace qv::cli {

int command_run(const Args& args) {
  std::string ir_file, synthetic;
  std::vector<std::string> input_files;
  int resolution = 224, threads = 0;
  uint64_t seed = 1;
  po::options_description opts("qverify run [--ir FILE | --synthetic MODEL] [options]");
  opts.add_options()
      ("ir", po::value(&ir_file), "integer network description (.json with its .bin beside it)")
      ("synthetic", po::value(&synthetic), "a seeded random integer network: vgg16 or mobilenet_v2")
      ("resolution", po::value(&resolution)->default_value(224), "input resolution of a synthetic network")
      ("seed", po::value(&seed)->default_value(1), "seed of the synthetic weights and of the default input")
      ("input", po::value(&input_files)->multitoken(), ".npy file per network input (default: seeded input)")
      ("threads", po::value(&threads)->default_value(0), "reference worker threads (0 = all cores)")
      ("json", "print the trace summary as JSON");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (ir_file.empty() == synthetic.empty()) throw UsageError("give exactly one of --ir FILE or --synthetic MODEL\n" + [&] {
    std::ostringstream s;
    s << opts;
    return s.str();
  }());
  if (threads < 0) throw UsageError("--threads must be >= 0");

  const Network net = ir_file.empty() ? make_synthetic(synthetic, resolution, seed) : load_network(ir_file);
  const std::vector<IntTensor> inputs = load_inputs(net, input_files, seed);

  const bool json = vm.count("json") > 0;
  if (!json)
    std::fprintf(stderr, "qverify: evaluating '%s' (%zu nodes) with the reference on %d thread(s)...\n", net.name.c_str(),
                 net.nodes.size(), threads == 0 ? static_cast<int>(std::thread::hardware_concurrency()) : threads);
  const auto t0 = std::chrono::steady_clock::now();
  ReferenceOptions ro;
  ro.threads = threads;
  const Trace trace = evaluate_reference(net, inputs, ro);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const std::vector<LayerSummary> rows = summarize(net, trace);
  if (json) {
    nlohmann::ordered_json j;
    j["network"] = net.name;
    j["backend"] = "reference";
    j["seconds"] = seconds;
    j["layers"] = to_json(rows);
    std::cout << j.dump(2) << "\n";
  } else {
    print_table(std::cout, rows);
    std::printf("reference: %zu nodes in %.2f s; output '%s' checksum %s\n", rows.size(), seconds, net.output.c_str(),
                rows.empty() ? "-" : rows.back().crc32.c_str());
  }
  return kAgree;
}

}  // namespace qv::cli
