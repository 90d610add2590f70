// qverify: entry point. Dispatches to a subcommand and maps errors to the exit-status contract:
// 0 all agree, 1 mismatch, 2 bad usage or input (message names the file/flag and what was expected),
// 3 internal error.
#include <boost/program_options/errors.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "ir/error.h"

namespace {

const char* const kUsage =
    "usage: qverify --model M --config C [options]     the layer-by-layer cross-check (qverify --model x --help)\n"
    "       qverify COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  run   --ir FILE | --synthetic vgg16|mobilenet_v2   evaluate an integer network with the\n"
    "        [--input X.npy] [--seed N] [--resolution R]   arbitrary-precision reference and print\n"
    "        [--threads N] [--json]                        its per-layer trace\n"
    "  ir validate FILE                                    check an integer network description\n"
    "  ir synth --model M --out FILE [--seed N]            write a synthetic network of a real topology\n"
    "  models                                              networks, schemes and shipped configs\n"
    "  vectors --model M --config C --out DIR              golden test vectors of every layer (docs/vectors.md)\n"
    "        [--formats npy,hex,bin,csv,h] [--inputs N | FILES...] [--seed N] [--resolution R]\n"
    "        [--requant F] [--layout nchw|nhwc] [--shard i/N] [--force]\n"
    "  check DIR [--junit FILE]                            verify a vectors directory's checksums and\n"
    "                                                      recompute it bit for bit (exit 1 on drift)\n"
    "  vectors-merge OUT DIR... [--force]                  verify --shard outputs and merge them\n"
    "  compare DIR --actual DUMP [--format F] [--json]     a hardware dump against golden vectors: first\n"
    "                                                      diverging layer and element, diagnosis (exit 1)\n"
    "  explain DIR --layer NAME --index i,j,k,l [--json]   the computation chain of one output element\n"
    "\n"
    "exit status: 0 agree, 1 mismatch, 2 bad usage or input, 3 internal error\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace qv::cli;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return kBadInput;
  }
  const std::string command = argv[1];
  const Args args(argv + 2, argv + argc);
  try {
    if (command.rfind("--", 0) == 0 && command != "--help") return command_check(Args(argv + 1, argv + argc));
    if (command == "run") return command_run(args);
    if (command == "ir") return command_ir(args);
    if (command == "models") return command_models(args);
    if (command == "vectors") return command_vectors(args);
    if (command == "vectors-merge") return command_vectors_merge(args);
    if (command == "check") return command_check_dir(args);
    if (command == "compare") return command_compare(args);
    if (command == "explain") return command_explain(args);
    if (command == "--help" || command == "-h" || command == "help") {
      std::fputs(kUsage, stdout);
      return kAgree;
    }
    std::fprintf(stderr, "qverify: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return kBadInput;
  } catch (const qv::InputError& e) {
    std::fprintf(stderr, "qverify: error: %s\n", e.what());
    return kBadInput;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "qverify: usage error: %s\n", e.what());
    return kBadInput;
  } catch (const boost::program_options::error& e) {
    std::fprintf(stderr, "qverify %s: usage error: %s\n", command.c_str(), e.what());
    return kBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qverify: internal error: %s\n", e.what());
    return kInternal;
  }
}
