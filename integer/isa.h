// Instruction-set tiers of the optimized backend, and the choice among them at run time.
//
// Every tier is compiled into the same binary (function-level target attributes), so one process can run
// them side by side; the tier a run uses is `resolve_isa(requested)`:
//   "auto"        the best the CPU supports (QVERIFY_ISA in the environment overrides it)
//   "avx512amx"   avx512vnni plus AMX tiles (tdpbusd) for 8-bit GEMMs (needs amx-tile, amx-int8 and the
//                 kernel's permission to use tile data, which cpu_supports requests once per process)
//   "avx512vnni"  vpdpbusd / vpdpwssd kernels (needs avx512f, bw, dq, vl and vnni)
//   "avx2"        vpmaddwd kernels on 16-bit lanes
//   "scalar"      portable C++, the tier every other one is tested against
// Asking for a tier the CPU lacks is an error (std::invalid_argument), never a silent downgrade.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace qv::integer {

enum class Isa { scalar, avx2, avx512vnni, avx512amx };

// The tiers whose non-GEMM kernels (depthwise, requant, narrowing) are the AVX-512 ones.
inline bool uses_avx512(Isa isa) { return isa == Isa::avx512vnni || isa == Isa::avx512amx; }

std::string_view to_string(Isa isa);
std::optional<Isa> parse_isa(std::string_view s);  // "scalar", "avx2", "avx512vnni", "avx512amx"
bool cpu_supports(Isa isa);
// AVX512-VBMI (vpermb, vpermt2b on bytes): the byte kernels of the AVX-512 tiers need it besides the tier.
bool cpu_has_avx512vbmi();
Isa best_supported_isa();
// The tier for an Options::isa string ("auto" consults QVERIFY_ISA, then the CPU).
Isa resolve_isa(const std::string& requested);

}  // namespace qv::integer
