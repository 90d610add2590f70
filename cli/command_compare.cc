// qverify compare DIR --actual DUMP [--format npy|hex|csv|bin] [--run ID] [--json]: a hardware / RTL
// dump against a golden-vector directory (docs/compare.md). Exit 0 every layer in the dump matches,
// 1 a layer diverges, 2 bad input (a missing or malformed file, a wrong shape).
#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/positional_dir.h"
#include "cli/exit_codes.h"
#include "ir/error.h"
#include "vectors/compare.h"

namespace qv::cli {

namespace po = boost::program_options;

int command_compare(const Args& args) {
  std::string dir, dump, format, run;
  bool as_json = false;
  size_t max_terms = 32;
  po::options_description opts("qverify compare DIR --actual DUMP [options]: a hardware dump against golden vectors");
  opts.add_options()
      ("help,h", "this help")
      ("actual", po::value(&dump), "the dump: a directory of per-layer files <node>.npy|.hex|.csv|.bin (or <node>.output.<ext>)")
      ("format", po::value(&format), "read only this format: npy, hex, csv or bin (default: whichever the dump has, in that order)")
      ("run", po::value(&run), "the run (input) of DIR to compare with, e.g. in0003 (default: the first)")
      ("max-terms", po::value(&max_terms), "text output: the window's largest terms shown (default 32)")
      ("json", po::bool_switch(&as_json), "print the report as JSON");
  const po::variables_map vm = parse_with_dir(args, opts, dir);
  if (vm.count("help")) {
    std::cout << opts;
    return kAgree;
  }
  if (dir.empty() || dump.empty()) {
    std::ostringstream s;
    s << "expected DIR and --actual DUMP\n" << opts;
    throw UsageError(s.str());
  }
  vectors::CompareOptions o;
  o.run = run;
  o.max_terms = max_terms;
  if (!format.empty()) {
    std::vector<vectors::Format> f;
    try {
      f = vectors::parse_formats(format);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--format: ") + e.what());
    }
    if (f.size() != 1 || f[0] == vectors::Format::h) throw UsageError("--format: expected one of npy, hex, csv, bin");
    o.format = f[0];
  }
  const vectors::CompareReport r = vectors::compare_dump(dir, dump, o);
  if (as_json) std::cout << r.to_json().dump(2) << "\n";
  else std::cout << r.to_text(max_terms);
  return r.ok() ? kAgree : kMismatch;
}

}  // namespace qv::cli
