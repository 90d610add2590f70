// The machine's int8 multiply-accumulate peak: sustained vpdpbusd and AMX tdpbusd loops with no memory
// traffic; the larger is the denominator of the "fraction of peak" columns of the benchmarks.
#pragma once

#include <cstdint>

namespace qv::bench {

// 16 independent vpdpbusd chains of `iterations` steps (64 MACs each); returns their sum so the loop
// cannot be removed. Call only when integer::cpu_supports(Isa::avx512vnni).
int64_t vpdpbusd_loop(int64_t iterations);

// 4 tiles of 16x16 int32 sums, each updated by tdpbusd (16 x 16 x 64 MACs) `iterations` times from tiles
// loaded once. Call only when integer::cpu_supports(Isa::avx512amx) (which also obtains the permission).
int64_t tdpbusd_loop(int64_t iterations);

// GMAC/s of `threads` threads each running vpdpbusd_loop at the same time (about 0.3 s); 0 without VNNI.
double vnni_peak_gmacs(int threads);
// The same for tdpbusd_loop; 0 without AMX.
double amx_peak_gmacs(int threads);
// The larger of the two: the int8 peak of this machine.
double int8_peak_gmacs(int threads);

}  // namespace qv::bench
