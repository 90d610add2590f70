// The machine's int8 multiply-accumulate peak: a sustained vpdpbusd loop with no memory traffic, the
// denominator of the "fraction of peak" columns of the benchmarks.
#pragma once

#include <cstdint>

namespace qv::bench {

// 16 independent vpdpbusd chains of `iterations` steps (64 MACs each); returns their sum so the loop
// cannot be removed. Call only when integer::cpu_supports(Isa::avx512vnni).
int64_t vpdpbusd_loop(int64_t iterations);

// GMAC/s of `threads` threads each running vpdpbusd_loop at the same time (about 0.3 s); 0 without VNNI.
double vnni_peak_gmacs(int threads);

}  // namespace qv::bench
