// Exit status of every qverify command (the contract in README.md).
#pragma once

namespace qv::cli {

enum ExitCode : int {
  kAgree = 0,        // everything agrees
  kMismatch = 1,     // a mismatch or regression was found
  kBadInput = 2,     // bad usage or bad input (flags, files)
  kInternal = 3,     // a bug in qverify
};

}  // namespace qv::cli
