#include "integer/isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace qv::integer {

std::string_view to_string(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::avx512amx: return "avx512amx";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view s) {
  if (s == "scalar") return Isa::scalar;
  if (s == "avx2") return Isa::avx2;
  if (s == "avx512vnni") return Isa::avx512vnni;
  if (s == "avx512amx") return Isa::avx512amx;
  return std::nullopt;
}

namespace {

// AMX-TILE and AMX-INT8 in CPUID leaf 7, and Linux's permission to use the tile data state
// (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA), requested once for the whole process.
bool amx_usable() {
  static const bool usable = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool tile = (edx >> 24) & 1u, int8 = (edx >> 25) & 1u;
    if (!tile || !int8) return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
}

}  // namespace

bool cpu_has_avx512vbmi() {
  static const bool vbmi = __builtin_cpu_supports("avx512vbmi");
  return vbmi;
}

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return __builtin_cpu_supports("avx2");
    case Isa::avx512vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
    case Isa::avx512amx: return cpu_supports(Isa::avx512vnni) && amx_usable();
  }
  return false;
}

Isa best_supported_isa() {
  if (cpu_supports(Isa::avx512amx)) return Isa::avx512amx;
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
  if (!isa) throw std::invalid_argument("unknown ISA '" + name + "' (expected auto, avx512amx, avx512vnni, avx2 or scalar)");
  if (!cpu_supports(*isa)) throw std::invalid_argument("this CPU does not support the ISA '" + name + "'");
  return *isa;
}

}  // namespace qv::integer
