// Errors at the trust boundary: user files and flags.
//
// Policy (see docs/errors.md): anything that comes from outside (a file, a flag, a dump) is validated
// once, and a failure throws InputError with the file, the place in it (node and field, key, line) and
// what was expected. The CLI maps InputError to exit status 2. Internal invariants are assertions.
#pragma once

#include <stdexcept>
#include <string>

namespace qv {

class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::string where, std::string what)
      : std::runtime_error(format(file, where, what)),
        file_(std::move(file)), where_(std::move(where)), what_(std::move(what)) {}

  const std::string& file() const { return file_; }
  const std::string& where() const { return where_; }
  const std::string& problem() const { return what_; }

 private:
  static std::string format(const std::string& file, const std::string& where, const std::string& what) {
    std::string s = file.empty() ? std::string("<input>") : file;
    if (!where.empty()) s += ": " + where;
    return s + ": " + what;
  }
  std::string file_, where_, what_;
};

}  // namespace qv
