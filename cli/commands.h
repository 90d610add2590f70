// The subcommands of qverify. Each takes its own arguments (argv after the subcommand name), throws
// qv::InputError or UsageError for bad input, and returns an exit code (cli/exit_codes.h).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace qv::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Args = std::vector<std::string>;

int command_run(const Args& args);  // evaluate an integer network with the reference
int command_ir(const Args& args);   // ir validate | ir synth
int command_models(const Args& args);  // networks, schemes, shipped configs
int command_check(const Args& args);   // --model M --config C: the layer-by-layer cross-check
int command_vectors(const Args& args);        // vectors: golden test vectors (docs/vectors.md)
int command_vectors_merge(const Args& args);  // vectors-merge OUT DIR...: verify shards and merge them
int command_check_dir(const Args& args);      // check DIR: checksums, then recompute bit for bit
int command_compare(const Args& args);        // compare DIR --actual DUMP: a hardware dump against golden vectors
int command_explain(const Args& args);        // explain DIR --layer L --index ...: one element's computation chain

}  // namespace qv::cli
