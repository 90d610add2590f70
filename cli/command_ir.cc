// qverify ir: work with integer network description files.
//   qverify ir validate FILE            load and validate; print a one-line summary
//   qverify ir synth --model M --out F  write a seeded synthetic network of a real topology
#include <boost/program_options.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/network_source.h"
#include "ir/serialize.h"

namespace po = boost::program_options;

namespace qv::cli {

namespace {

int ir_validate(const Args& args) {
  if (args.size() != 1) throw UsageError("usage: qverify ir validate FILE.json");
  const Network net = load_network(args[0]);
  size_t weights = 0;
  for (const Node& n : net.nodes) {
    if (const auto* c = std::get_if<Conv2dOp>(&n.op)) weights += c->weight.data.size();
    if (const auto* l = std::get_if<LinearOp>(&n.op)) weights += l->weight.data.size();
  }
  std::printf("%s: valid qverify IR '%s': %zu nodes, %zu weights, output '%s'\n", args[0].c_str(), net.name.c_str(),
              net.nodes.size(), weights, net.output.c_str());
  return kAgree;
}

int ir_synth(const Args& args) {
  std::string model, out;
  int resolution = 224;
  uint64_t seed = 1;
  po::options_description opts("qverify ir synth --model MODEL --out FILE.json [options]");
  opts.add_options()
      ("model", po::value(&model)->required(), "vgg16 or mobilenet_v2")
      ("out", po::value(&out)->required(), "output .json (its .bin is written beside it)")
      ("resolution", po::value(&resolution)->default_value(224), "input resolution")
      ("seed", po::value(&seed)->default_value(1), "seed of the random integer weights");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  const Network net = make_synthetic(model, resolution, seed);
  save_network(net, out);
  std::printf("wrote %s (%zu nodes)\n", out.c_str(), net.nodes.size());
  return kAgree;
}

}  // namespace

int command_ir(const Args& args) {
  if (args.empty()) throw UsageError("usage: qverify ir validate FILE | qverify ir synth --model M --out FILE");
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "validate") return ir_validate(rest);
  if (args[0] == "synth") return ir_synth(rest);
  throw UsageError("unknown 'qverify ir' command '" + args[0] + "' (expected validate or synth)");
}

}  // namespace qv::cli
