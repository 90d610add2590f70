// The shape shared by `check`, `compare` and `explain`: named options plus one positional DIR.
#pragma once

#include <boost/program_options.hpp>

#include <string>

#include "cli/commands.h"

namespace qv::cli {

// Parses `args` against `opts` with DIR as the one positional argument (stored into `dir`).
inline boost::program_options::variables_map parse_with_dir(const Args& args, const boost::program_options::options_description& opts,
                                                            std::string& dir) {
  namespace po = boost::program_options;
  po::options_description hidden;
  hidden.add_options()("dir", po::value(&dir), "");
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("dir", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
  po::notify(vm);
  return vm;
}

}  // namespace qv::cli
