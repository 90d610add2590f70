#include "integer/add_pair_dyadic.h"

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <variant>

namespace qv::integer {

namespace {

// Branch b's table where it is affine on every channel and covers its whole type (int32 or int64
// entries), as slope and at_zero per channel.
bool affine_branch(const AddRequantLayer& add, size_t b, IntType t, size_t C, std::vector<int64_t>& slope, std::vector<int64_t>& at_zero) {
  auto take = [&](const auto* table) {
    if (table == nullptr || table->in_lo != t.min() || table->in_lo + table->values - 1 != t.max() || table->affine.size() != C) return false;
    for (size_t c = 0; c < C; ++c)
      if (!table->affine[c]) return false;
    slope = table->slope, at_zero = table->at_zero;
    return true;
  };
  return (b < add.tables.size() && take(add.tables[b].get())) || (b < add.tables64.size() && take(add.tables64[b].get()));
}

// The requant's real scale and offset on channel c (offset: delta plus the rounding's, so that
// y ~ floor(alpha*sum + offset)), in doubles: only to pick candidates, which the check then decides.
bool real_scale(const Requant& rq, size_t c, double& alpha, double& offset) {
  if (const auto* f = std::get_if<ExactRequant>(&rq.form)) {
    if (c >= f->alpha.size() || c >= f->delta.size()) return false;
    alpha = f->alpha[c].convert_to<double>();
    offset = f->delta[c].convert_to<double>();
    switch (f->rounding) {
      case Rounding::floor:
      case Rounding::trunc: break;
      case Rounding::ceil: offset += 1 - 1e-9; break;
      default: offset += 0.5; break;
    }
    return std::isfinite(alpha) && std::isfinite(offset);
  }
  if (const auto* f = std::get_if<MulAddShiftRequant>(&rq.form)) {
    if (c >= f->mul.size() || c >= f->add.size()) return false;
    alpha = std::ldexp(static_cast<double>(f->mul[c]), -f->shift);
    offset = std::ldexp(static_cast<double>(f->add[c]), -f->shift);
    return true;
  }
  return false;
}

// Whether two channels compute the same function (the previous channel's form then serves).
bool same_channel(const Requant& rq, size_t a, size_t b, const std::vector<int64_t> (&slope)[2], const std::vector<int64_t> (&at_zero)[2]) {
  for (int br = 0; br < 2; ++br)
    if (slope[br][a] != slope[br][b] || at_zero[br][a] != at_zero[br][b]) return false;
  if (const auto* f = std::get_if<ExactRequant>(&rq.form)) return f->alpha[a] == f->alpha[b] && f->delta[a] == f->delta[b];
  if (const auto* f = std::get_if<MulAddShiftRequant>(&rq.form)) return f->mul[a] == f->mul[b] && f->add[a] == f->add[b];
  return false;
}

// The first 16 bytes as int32 lanes, by their signedness. maskz forms throughout: GCC 12 warns on the
// unmasked ones' undefined source under -Werror.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i widen16(__m512i bytes, bool is_signed) {
  const __m128i b = _mm512_maskz_extracti32x4_epi32(0xF, bytes, 0);
  return is_signed ? _mm512_maskz_cvtepi8_epi32(0xFFFF, b) : _mm512_maskz_cvtepu8_epi32(0xFFFF, b);
}

}  // namespace

std::vector<PairDyadic> pair_dyadic_channels(const AddRequantLayer& add, IntType t0, IntType t1, IntType sum_type, const Requant& rq,
                                             const FusedRequant& stage) {
  const size_t C = stage.channels();
  if (t0.bits > 8 || t1.bits > 8 || add.branches.size() != 2 || rq.channels() != C || C == 0) return {};
  std::vector<int64_t> slope[2], at_zero[2];
  if (!affine_branch(add, 0, t0, C, slope[0], at_zero[0]) || !affine_branch(add, 1, t1, C, slope[1], at_zero[1])) return {};
  const int64_t n0 = t0.max() - t0.min() + 1, n1 = t1.max() - t1.min() + 1;
  const int64_t x_max0 = std::max(-t0.min(), t0.max()), x_max1 = std::max(-t1.min(), t1.max());
  std::vector<int64_t> sums(static_cast<size_t>(n0 * n1)), want(sums.size());
  const int32_t lo = static_cast<int32_t>(rq.lo), hi = static_cast<int32_t>(rq.hi);
  std::vector<PairDyadic> out(C);
  for (size_t c = 0; c < C; ++c) {
    if (c > 0 && same_channel(rq, c - 1, c, slope, at_zero)) {
      out[c] = out[c - 1];
      continue;
    }
    double alpha = 0, offset = 0;
    if (!real_scale(rq, c, alpha, offset)) return {};
    // The exact outputs: the add's sum clamped to its type, then the requant's own routes.
    for (int64_t i = 0; i < n0; ++i)
      for (int64_t j = 0; j < n1; ++j) {
        const __int128 s = static_cast<__int128>(at_zero[0][c]) + static_cast<__int128>(slope[0][c]) * (t0.min() + i) + at_zero[1][c] +
                           static_cast<__int128>(slope[1][c]) * (t1.min() + j);
        sums[static_cast<size_t>(i * n1 + j)] = static_cast<int64_t>(std::clamp<__int128>(s, sum_type.min(), sum_type.max()));
      }
    int64_t y_lo = INT64_MAX, y_hi = INT64_MIN;
    stage.apply(c, sums.data(), want.data(), static_cast<int64_t>(sums.size()), y_lo, y_hi);
    bool found = false;
    for (int k = 0; k <= 30 && !found; ++k) {
      const double scale = std::ldexp(1.0, k);
      const double m0 = std::nearbyint(alpha * static_cast<double>(slope[0][c]) * scale),
                   m1 = std::nearbyint(alpha * static_cast<double>(slope[1][c]) * scale),
                   d = std::floor((alpha * (static_cast<double>(at_zero[0][c]) + static_cast<double>(at_zero[1][c])) + offset) * scale);
      // Every m0*x0 + m1*x1 + d inside int32 (and the candidates inside int32 themselves).
      if (std::abs(m0) * static_cast<double>(x_max0) + std::abs(m1) * static_cast<double>(x_max1) + std::abs(d) + 2 >= 2147483647.0) break;
      for (const int e : {0, -1, 1}) {
        const PairDyadic p{static_cast<int32_t>(m0), static_cast<int32_t>(m1), static_cast<int32_t>(d) + e, k};
        bool equal = true;
        for (int64_t i = 0; i < n0 && equal; ++i)
          for (int64_t j = 0; j < n1; ++j)
            if (pair_dyadic_scalar(static_cast<int32_t>(t0.min() + i), static_cast<int32_t>(t1.min() + j), p, lo, hi) !=
                want[static_cast<size_t>(i * n1 + j)]) {
              equal = false;
              break;
            }
        if (equal) {
          out[c] = p, found = true;
          break;
        }
      }
    }
    if (!found) return {};
  }
  return out;
}

__attribute__((target("avx512f,avx512bw"))) void add_pair_dyadic_bytes(const uint8_t* x0, bool signed0, const uint8_t* x1, bool signed1,
                                                                      int64_t n, const PairDyadic& p, int32_t lo, int32_t hi, uint8_t* dst,
                                                                      int32_t& y_lo, int32_t& y_hi) {
  const __m512i m0 = _mm512_set1_epi32(p.m0), m1 = _mm512_set1_epi32(p.m1), d = _mm512_set1_epi32(p.d);
  const __m512i vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
  const __m128i k = _mm_cvtsi32_si128(p.k);
  __m512i r_lo = _mm512_set1_epi32(INT32_MAX), r_hi = _mm512_set1_epi32(INT32_MIN);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = static_cast<__mmask16>(n - i >= 16 ? 0xFFFFu : (1u << (n - i)) - 1);
    const __m512i a = widen16(_mm512_maskz_loadu_epi8(__mmask64{mask}, x0 + i), signed0);
    const __m512i b = widen16(_mm512_maskz_loadu_epi8(__mmask64{mask}, x1 + i), signed1);
    const __m512i z = _mm512_add_epi32(_mm512_add_epi32(_mm512_maskz_mullo_epi32(0xFFFF, a, m0), _mm512_maskz_mullo_epi32(0xFFFF, b, m1)), d);
    const __m512i y = _mm512_maskz_min_epi32(0xFFFF, _mm512_maskz_max_epi32(0xFFFF, _mm512_maskz_sra_epi32(0xFFFF, z, k), vlo), vhi);
    r_lo = _mm512_mask_min_epi32(r_lo, mask, r_lo, y), r_hi = _mm512_mask_max_epi32(r_hi, mask, r_hi, y);
    _mm512_mask_cvtepi32_storeu_epi8(dst + i, mask, y);
  }
  alignas(64) int32_t l[16], h[16];
  _mm512_store_si512(l, r_lo), _mm512_store_si512(h, r_hi);
  for (int i = 0; i < 16; ++i) y_lo = std::min(y_lo, l[i]), y_hi = std::max(y_hi, h[i]);
}

}  // namespace qv::integer
