#include "integer/path_counters.h"

namespace qv::integer {

std::string_view to_string(Path p) {
  switch (p) {
#define QV_X(name) \
  case Path::name: return #name;
    QV_INTEGER_PATHS(QV_X)
#undef QV_X
    case Path::count: break;
  }
  return "?";
}

PathCounters& path_counters() {
  static PathCounters counters;
  return counters;
}

}  // namespace qv::integer
