// The int8 peak loops (see int8_peak.h).
#include "bench/int8_peak.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "integer/amx_tiles.h"
#include "integer/isa.h"

namespace qv::bench {

// The int8 MAC peak: 16 independent vpdpbusd chains per thread (64 MACs each), no memory traffic. The
// accumulators are named variables kept in registers by two empty asm statements (8 "+v" operands each:
// GCC allows 30 operands, a "+" one counts twice); an array with one asm statement spilled half of them
// to the stack every iteration and measured half the peak.
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) int64_t vpdpbusd_loop(int64_t iterations) {
  const __m512i x = _mm512_set1_epi32(0x01010101), w = _mm512_set1_epi32(0x01020304);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  __m512i a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
  for (int64_t i = 0; i < iterations; ++i) {
    a0 = _mm512_dpbusd_epi32(a0, x, w), a1 = _mm512_dpbusd_epi32(a1, x, w), a2 = _mm512_dpbusd_epi32(a2, x, w);
    a3 = _mm512_dpbusd_epi32(a3, x, w), a4 = _mm512_dpbusd_epi32(a4, x, w), a5 = _mm512_dpbusd_epi32(a5, x, w);
    a6 = _mm512_dpbusd_epi32(a6, x, w), a7 = _mm512_dpbusd_epi32(a7, x, w), a8 = _mm512_dpbusd_epi32(a8, x, w);
    a9 = _mm512_dpbusd_epi32(a9, x, w), a10 = _mm512_dpbusd_epi32(a10, x, w), a11 = _mm512_dpbusd_epi32(a11, x, w);
    a12 = _mm512_dpbusd_epi32(a12, x, w), a13 = _mm512_dpbusd_epi32(a13, x, w), a14 = _mm512_dpbusd_epi32(a14, x, w);
    a15 = _mm512_dpbusd_epi32(a15, x, w);
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));
    __asm__ volatile("" : "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11), "+v"(a12), "+v"(a13), "+v"(a14), "+v"(a15));
  }
  const __m512i s = _mm512_add_epi32(
      _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                       _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7))),
      _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)),
                       _mm512_add_epi32(_mm512_add_epi32(a12, a13), _mm512_add_epi32(a14, a15))));
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, s);
  int64_t total = 0;
  for (int32_t v : lanes) total += v;
  return total;
}

namespace {

template <class Loop>
double peak(int threads, int64_t iterations, double macs_per_iteration, Loop loop) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  std::vector<int64_t> sums(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) pool.emplace_back([&sums, t, iterations, loop] { sums[static_cast<size_t>(t)] = loop(iterations); });
  for (auto& th : pool) th.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return macs_per_iteration * static_cast<double>(iterations) * threads / seconds / 1e9;
}

}  // namespace

double vnni_peak_gmacs(int threads) {
  if (!integer::cpu_supports(integer::Isa::avx512vnni)) return 0;
  return peak(threads, 40'000'000, 16.0 * 64.0, vpdpbusd_loop);
}

__attribute__((target("amx-tile,amx-int8"), noinline)) int64_t tdpbusd_loop(int64_t iterations) {
  integer::TileConfig c;
  for (int t = 0; t < 8; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  _tile_loadconfig(&c);
  alignas(64) static const uint8_t a[2][16][64] = {};
  alignas(64) static const int8_t b[2][16][64] = {};
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, a[0], 64);
  _tile_loadd(5, a[1], 64);
  _tile_loadd(6, b[0], 64);
  _tile_loadd(7, b[1], 64);
  for (int64_t i = 0; i < iterations; ++i) {
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  alignas(64) int32_t out[16][16];
  _tile_stored(0, out, 64);
  _tile_release();
  return out[0][0];
}

double amx_peak_gmacs(int threads) {
  if (!integer::cpu_supports(integer::Isa::avx512amx)) return 0;
  return peak(threads, 4'000'000, 4.0 * 16 * 16 * 64, tdpbusd_loop);
}

double int8_peak_gmacs(int threads) { return std::max(vnni_peak_gmacs(threads), amx_peak_gmacs(threads)); }

}  // namespace qv::bench
