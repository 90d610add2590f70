#include "integer/isa.h"

#include <cstdlib>
#include <stdexcept>

namespace qv::integer {

std::string_view to_string(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512vnni: return "avx512vnni";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view s) {
  if (s == "scalar") return Isa::scalar;
  if (s == "avx2") return Isa::avx2;
  if (s == "avx512vnni") return Isa::avx512vnni;
  return std::nullopt;
}

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return __builtin_cpu_supports("avx2");
    case Isa::avx512vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

Isa best_supported_isa() {
  if (cpu_supports(Isa::avx512vnni)) return Isa::avx512vnni;
  if (cpu_supports(Isa::avx2)) return Isa::avx2;
  return Isa::scalar;
}

Isa resolve_isa(const std::string& requested) {
  std::string name = requested;
  if (name == "auto") {
    const char* env = std::getenv("QVERIFY_ISA");
    if (env == nullptr || std::string_view(env).empty() || std::string_view(env) == "auto") return best_supported_isa();
    name = env;
  }
  const std::optional<Isa> isa = parse_isa(name);
  if (!isa) throw std::invalid_argument("unknown ISA '" + name + "' (expected auto, avx512vnni, avx2 or scalar)");
  if (!cpu_supports(*isa)) throw std::invalid_argument("this CPU does not support the ISA '" + name + "'");
  return *isa;
}

}  // namespace qv::integer
