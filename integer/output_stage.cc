#include "integer/output_stage.h"

#include <immintrin.h>

namespace qv::integer {

namespace {

inline __attribute__((always_inline)) void min_max_body(const int64_t* v, int64_t n, int64_t& lo, int64_t& hi) {
  int64_t l = lo, h = hi;
  for (int64_t i = 0; i < n; ++i) l = std::min(l, v[i]), h = std::max(h, v[i]);
  lo = l, hi = h;
}

void min_max_scalar(const int64_t* v, int64_t n, int64_t& lo, int64_t& hi) { min_max_body(v, n, lo, hi); }
__attribute__((target("avx2"))) void min_max_avx2(const int64_t* v, int64_t n, int64_t& lo, int64_t& hi) { min_max_body(v, n, lo, hi); }

// maskz forms: GCC 12's unmasked 64-bit min/max intrinsics trip -Wmaybe-uninitialized.
__attribute__((target("avx512f"))) void min_max_avx512(const int64_t* v, int64_t n, int64_t& lo, int64_t& hi) {
  int64_t i = 0;
  if (n >= 8) {
    const __mmask8 all = 0xFF;
    __m512i l = _mm512_set1_epi64(lo), h = _mm512_set1_epi64(hi);
    for (; i + 8 <= n; i += 8) {
      const __m512i x = _mm512_loadu_si512(v + i);
      l = _mm512_maskz_min_epi64(all, l, x), h = _mm512_maskz_max_epi64(all, h, x);
    }
    alignas(64) int64_t ls[8], hs[8];
    _mm512_store_si512(ls, l), _mm512_store_si512(hs, h);
    for (int j = 0; j < 8; ++j) lo = std::min(lo, ls[j]), hi = std::max(hi, hs[j]);
  }
  min_max_body(v + i, n - i, lo, hi);
}

void narrow_scalar(const int64_t* v, int64_t n, uint8_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint8_t>(v[i]);
}

__attribute__((target("avx512f"))) void narrow_avx512(const int64_t* v, int64_t n, uint8_t* dst) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm512_mask_cvtepi64_storeu_epi8(dst + i, 0xFF, _mm512_loadu_si512(v + i));
  narrow_scalar(v + i, n - i, dst + i);
}

}  // namespace

NarrowFn narrow_for(Isa isa) { return uses_avx512(isa) ? narrow_avx512 : narrow_scalar; }

MinMaxFn min_max_for(Isa isa) {
  switch (isa) {
    case Isa::avx512vnni:
    case Isa::avx512amx: return min_max_avx512;
    case Isa::avx2: return min_max_avx2;
    case Isa::scalar: break;
  }
  return min_max_scalar;
}

}  // namespace qv::integer
