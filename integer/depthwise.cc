#include "integer/depthwise.h"

#include "integer/depthwise_bytes_vbmi.h"
#include "integer/per_thread.h"
#include "integer/requant16_avx512.h"
#include "integer/tensor_alloc.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <type_traits>
#include <vector>

namespace qv::integer {

namespace {

struct PlaneArgs {
  const int32_t* plane;  // padded input plane [PH][PW]
  const int32_t* weight; // [KH*KW]
  int64_t PW, OH, OW, KH, KW;
  int stride_h, stride_w, dilation_h, dilation_w;
  void* acc;             // [OH*OW] of Acc
};

// The plane's accumulators without bias. SW: the stride along the row as a constant (0: runtime).
template <class Acc, int SW>
inline __attribute__((always_inline)) void plane_body(const PlaneArgs& a) {
  Acc* acc = static_cast<Acc*>(a.acc);
  const int64_t sw = SW > 0 ? SW : a.stride_w;
  for (int64_t y = 0; y < a.OH; ++y) {
    Acc* row = acc + y * a.OW;
    for (int64_t x = 0; x < a.OW; ++x) row[x] = 0;
    for (int64_t ky = 0; ky < a.KH; ++ky) {
      const int32_t* in_row = a.plane + (y * a.stride_h + ky * a.dilation_h) * a.PW;
      for (int64_t kx = 0; kx < a.KW; ++kx) {
        const Acc w = a.weight[ky * a.KW + kx];
        const int32_t* in = in_row + kx * a.dilation_w;
        for (int64_t x = 0; x < a.OW; ++x) row[x] += w * static_cast<Acc>(in[x * sw]);
      }
    }
  }
}

template <class Acc>
inline __attribute__((always_inline)) void plane_any(const PlaneArgs& a) {
  if (a.stride_w == 1)
    plane_body<Acc, 1>(a);
  else if (a.stride_w == 2)
    plane_body<Acc, 2>(a);
  else
    plane_body<Acc, 0>(a);
}

void plane_scalar32(const PlaneArgs& a) { plane_any<int32_t>(a); }
void plane_scalar64(const PlaneArgs& a) { plane_any<int64_t>(a); }
__attribute__((target("avx2"))) void plane_avx2_32(const PlaneArgs& a) { plane_any<int32_t>(a); }
__attribute__((target("avx2"))) void plane_avx2_64(const PlaneArgs& a) { plane_any<int64_t>(a); }
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void plane_avx512_32(const PlaneArgs& a) { plane_any<int32_t>(a); }
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void plane_avx512_64(const PlaneArgs& a) { plane_any<int64_t>(a); }

// AVX-512, int32 accumulators, stride 1 or 2 along the row: 16 outputs of a row stay in one register
// across all taps and go out once, widened to int64 with the bias added, straight into the output plane.
// Loads are masked to the pixels a row needs (a masked-off lane never touches memory); stride 2 takes
// the even lanes of two loads (vpermt2d).
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void plane_avx512_direct(const PlaneArgs& a, int64_t bias, int64_t* dst) {
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i vbias = _mm512_set1_epi64(bias);
  const int taps = static_cast<int>(a.KH * a.KW);
  int64_t offset[64];  // taps <= 64: the caller checks
  for (int t = 0; t < taps; ++t) offset[t] = (t / a.KW) * a.dilation_h * a.PW + (t % a.KW) * a.dilation_w;
  for (int64_t y = 0; y < a.OH; ++y) {
    for (int64_t x0 = 0; x0 < a.OW; x0 += 16) {
      const int n = static_cast<int>(std::min<int64_t>(16, a.OW - x0));
      const __mmask16 out_mask = static_cast<__mmask16>((1u << n) - 1);
      // stride 2: elements 0 .. 2(n-1) of the window row, split over two 16-lane loads.
      const int span = a.stride_w == 1 ? n : 2 * (n - 1) + 1;
      const __mmask16 lo_mask = static_cast<__mmask16>(span >= 16 ? 0xFFFFu : (1u << span) - 1);
      const __mmask16 hi_mask = static_cast<__mmask16>(span <= 16 ? 0u : (1u << (span - 16)) - 1);
      __m512i acc = _mm512_setzero_si512();
      for (int t = 0; t < taps; ++t) {
        const int32_t* in = a.plane + y * a.stride_h * a.PW + offset[t] + x0 * a.stride_w;
        __m512i v;
        if (a.stride_w == 1) {
          v = _mm512_maskz_loadu_epi32(lo_mask, in);
        } else {
          v = _mm512_permutex2var_epi32(_mm512_maskz_loadu_epi32(lo_mask, in), evens, _mm512_maskz_loadu_epi32(hi_mask, in + 16));
        }
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(v, _mm512_set1_epi32(a.weight[t])));
      }
      // maskz forms: GCC 12's unmasked ones trip -Wmaybe-uninitialized.
      const __m512i lo = _mm512_add_epi64(_mm512_maskz_cvtepi32_epi64(0xFF, _mm512_maskz_extracti64x4_epi64(0xFF, acc, 0)), vbias);
      const __m512i hi = _mm512_add_epi64(_mm512_maskz_cvtepi32_epi64(0xFF, _mm512_maskz_extracti64x4_epi64(0xFF, acc, 1)), vbias);
      int64_t* d = dst + y * a.OW + x0;
      _mm512_mask_storeu_epi64(d, static_cast<__mmask8>(out_mask & 0xFF), lo);
      _mm512_mask_storeu_epi64(d + 8, static_cast<__mmask8>(out_mask >> 8), hi);
    }
  }
}


// AVX-512 VNNI on int16 operands (DepthwiseLayer::int16): the padded plane is stored as int16 in
// stride_w phases, phase p holding columns p, p + s, p + 2s, ..., so that tap kx of output x reads
// phase (kx*dilation_w) % s at x + (kx*dilation_w) / s: contiguous for every stride. Taps go in pairs:
// vpunpck{l,h}wd interleaves the two taps' inputs and one vpdpwssd adds both products into 16 int32
// sums, half the multiply uops of vpmulld. All int32 arithmetic wraps, and the planner's acc32 proof
// bounds every partial sum, so the result is exact. The two accumulators hold outputs in the unpack
// order (4 of every 8); vpermt2d restores it once per 32 outputs.
struct Int16Plane {
  const int16_t* data;  // [phases][PH][QW]
  int64_t PH, QW, phases;
  bool flat;            // rows of at most 16 outputs, QW without slack: sums over the flattened planes (sums_int16)
};

template <class T>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void fill_int16_phases(const DepthwiseLayer& L, const T* src_plane, int16_t* dst,
                                                                  int64_t QW) {
  const int64_t s = L.stride_w;
  const int16_t pad = static_cast<int16_t>(L.pad_value);
  if constexpr (sizeof(T) == 1) {
    if (s == 1) {
      // Bytes at stride 1: every row in 32-lane pieces, each one masked load of the data columns, one
      // widening, the padding blended in and one masked store (no scalar loop, no per-row fills).
      const __m512i vpad = _mm512_set1_epi16(pad);
      auto lanes = [](int64_t a, int64_t b) {  // the bits of lanes [a, b) clipped to [0, 32)
        const int64_t lo = std::clamp<int64_t>(a, 0, 32), hi = std::clamp<int64_t>(b, 0, 32);
        return hi <= lo ? 0u : static_cast<uint32_t>(((uint64_t{1} << hi) - 1) & ~((uint64_t{1} << lo) - 1));
      };
      const int64_t x_lo = L.pad_left, x_hi = L.pad_left + L.W, x_end = std::min(L.PW, QW);
      for (int64_t py = 0; py < L.PH; ++py) {
        const int64_t iy = py - L.pad_top;
        const bool data_row = iy >= 0 && iy < L.H;
        int16_t* d = dst + py * QW;
        const T* src = data_row ? src_plane + iy * L.W : nullptr;  // column q holds src[q - pad_left]
        for (int64_t q0 = 0; q0 < QW; q0 += 32) {
          const __mmask32 data = data_row ? lanes(x_lo - q0, x_hi - q0) : 0u;
          __m512i v = _mm512_setzero_si512();
          if (data != 0) {
            // Masked-off lanes are never read, so the address may point before the row's first byte.
            const __m256i b = _mm256_maskz_loadu_epi8(data, reinterpret_cast<const uint8_t*>(src) + (q0 - x_lo));
            v = std::is_signed_v<T> ? _mm512_cvtepi8_epi16(b) : _mm512_cvtepu8_epi16(b);
          }
          v = _mm512_mask_mov_epi16(v, lanes(-q0, x_end - q0) & ~data, vpad);
          _mm512_mask_storeu_epi16(d + q0, lanes(0, QW - q0), v);
        }
      }
      return;
    }
  }
  auto ceil_div = [](int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; };
  for (int64_t p = 0; p < s; ++p) {
    // Phase p: q in [0, q_lo) padding, [q_lo, q_hi) data (ix = q*s + p - pad_left), [q_hi, q_end) padding,
    // [q_end, QW) zero.
    const int64_t q_lo = std::min(ceil_div(L.pad_left - p, s), QW), q_hi = std::min(ceil_div(L.pad_left + L.W - p, s), QW);
    const int64_t q_end = std::min(ceil_div(L.PW - p, s), QW);
    for (int64_t py = 0; py < L.PH; ++py) {
      const int64_t iy = py - L.pad_top;
      int16_t* d = dst + (p * L.PH + py) * QW;
      if (iy < 0 || iy >= L.H) {
        std::fill(d, d + q_end, pad);
      } else {
        std::fill(d, d + q_lo, pad);
        const T* src = src_plane + iy * L.W + (q_lo * s + p - L.pad_left);
        int64_t q = q_lo;
        if constexpr (sizeof(T) == 1) {
          if (s == 2) {
            // Every other byte: the low byte of each 16-bit word, widened by shifts (exact for both signs).
            for (; q < q_hi; q += 32) {
              const int64_t n = std::min<int64_t>(32, q_hi - q);
              const __mmask64 bytes = n == 32 ? ~__mmask64{0} : (__mmask64{1} << (2 * n - 1)) - 1;
              const __m512i words = _mm512_maskz_loadu_epi8(bytes, src + (q - q_lo) * 2);
              const __m512i low = std::is_signed_v<T> ? _mm512_srai_epi16(_mm512_slli_epi16(words, 8), 8) : _mm512_and_si512(words, _mm512_set1_epi16(0xFF));
              _mm512_mask_storeu_epi16(d + q, n == 32 ? 0xFFFFFFFFu : (1u << n) - 1, low);
            }
          }
        }
        if (s == 1)
          for (; q < q_hi; ++q) d[q] = static_cast<int16_t>(src[q - q_lo]);
        else
          for (; q < q_hi; ++q) d[q] = static_cast<int16_t>(src[(q - q_lo) * s]);
        std::fill(d + std::max(q_hi, q_lo), d + q_end, pad);
      }
      std::fill(d + q_end, d + QW, int16_t{0});
    }
  }
}

// The per-channel constants of sums_int16: tap offsets in the phase planes and the weight pairs.
struct Int16Taps {
  int taps = 0;
  int64_t offset[64];
  int32_t pair[32];  // (w[2j], w[2j+1]) as two int16 in one int32 (0 for a missing odd tap)
};

// The tap offsets depend on the layer only: computed once per task.
Int16Taps int16_offsets(const DepthwiseLayer& L, const Int16Plane& pl) {
  Int16Taps k;
  k.taps = static_cast<int>(L.KH * L.KW);
  for (int t = 0; t < k.taps; ++t) {
    const int64_t kx = (t % L.KW) * L.dilation_w, ky = (t / L.KW) * L.dilation_h;
    k.offset[t] = ((kx % L.stride_w) * pl.PH + ky) * pl.QW + kx / L.stride_w;
  }
  return k;
}

// The weight pairs of one channel.
void int16_pairs(Int16Taps& k, const int32_t* w) {
  for (int j = 0; 2 * j < k.taps; ++j) {
    const int32_t w0 = w[2 * j], w1 = 2 * j + 1 < k.taps ? w[2 * j + 1] : 0;
    k.pair[j] = static_cast<int32_t>((static_cast<uint32_t>(static_cast<uint16_t>(w1)) << 16) | static_cast<uint16_t>(w0));
  }
}

// Sums of positions base[0 .. count) (count <= 32) of the tap layout k: positions 0..15 in `first`,
// 16..31 in `second` (lanes past count hold 0). kTaps > 0 fixes the tap count at compile time (3x3,
// 5x5, 7x7: the loop unrolls and the offsets stay in registers); 0 reads it from k. Even and odd tap
// pairs go into separate accumulators so that two vpdpwssd chains of half the length overlap (int32
// additions wrap, so the order of the partial sums does not change the exact result).
template <int kTaps>
__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline)) inline void block_int16_vectors(const int16_t* base, const Int16Taps& k,
                                                                                                     int64_t count, __m512i& first,
                                                                                                     __m512i& second) {
  // Output i of a 32-block sits in lo (i % 8 < 4) or hi at lane 4*(i / 8) + i % 4.
  alignas(64) static const int32_t kFirst[16] = {0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23};
  alignas(64) static const int32_t kSecond[16] = {8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31};
  const int taps = kTaps > 0 ? kTaps : k.taps;
  const __mmask32 mask = count == 32 ? 0xFFFFFFFFu : (1u << count) - 1;
  __m512i lo[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()}, hi[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 32
  for (int j = 0; 2 * j < taps; ++j) {
    const __m512i a = _mm512_maskz_loadu_epi16(mask, base + k.offset[2 * j]);
    const __m512i b = 2 * j + 1 < taps ? _mm512_maskz_loadu_epi16(mask, base + k.offset[2 * j + 1]) : _mm512_setzero_si512();
    const __m512i wp = _mm512_set1_epi32(k.pair[j]);
    lo[j & 1] = _mm512_dpwssd_epi32(lo[j & 1], _mm512_unpacklo_epi16(a, b), wp);
    hi[j & 1] = _mm512_dpwssd_epi32(hi[j & 1], _mm512_unpackhi_epi16(a, b), wp);
  }
  const __m512i l = _mm512_add_epi32(lo[0], lo[1]), h = _mm512_add_epi32(hi[0], hi[1]);
  first = _mm512_permutex2var_epi32(l, _mm512_load_si512(kFirst), h);
  second = _mm512_permutex2var_epi32(l, _mm512_load_si512(kSecond), h);
}

// f.template operator()<kTaps>() with kTaps the tap count when it is 9, 25 or 49, else 0 (run time).
template <class F>
decltype(auto) with_taps(int taps, F&& f) {
  switch (taps) {
    case 9: return f.template operator()<9>();
    case 25: return f.template operator()<25>();
    case 49: return f.template operator()<49>();
    default: return f.template operator()<0>();
  }
}

// The same sums into out[0 .. 32).
template <int kTaps>
__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline)) inline void block_int16(const int16_t* base, const Int16Taps& k,
                                                                                             int64_t count, int32_t* out) {
  __m512i first, second;
  block_int16_vectors<kTaps>(base, k, count, first, second);
  _mm512_storeu_si512(out, first);
  _mm512_storeu_si512(out + 16, second);
}

// Output only, rows of more than 16 outputs (not flat): each 32-output block's sums go through the
// 16-lane route into the output bytes while they are in registers, with no int32 plane in between.
template <Form16 kForm, bool kTrack, int kTaps>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void requant_plane_int16(const DepthwiseLayer& L, const Int16Plane& pl,
                                                                              const Int16Taps& k, const HighMulChannel& hm, int32_t lo,
                                                                              int32_t hi, uint8_t* dst, Ranges32& r) {
  const HighMul16 h = high_mul16(hm, lo, hi);
  Ranges32 local = r;  // in registers (the byte stores may alias r)
  for (int64_t y = 0; y < L.OH; ++y) {
    const int16_t* base = pl.data + y * L.stride_h * pl.QW;
    for (int64_t x0 = 0; x0 < L.OW; x0 += 32) {
      const int64_t count = std::min<int64_t>(32, L.OW - x0);
      __m512i first, second;
      block_int16_vectors<kTaps>(base + x0, k, count, first, second);
      uint8_t* d = dst + y * L.OW + x0;
      requant_high_mul16_step<kForm, kTrack>(first, static_cast<__mmask16>(count >= 16 ? 0xFFFFu : (1u << count) - 1), h, d, local);
      if (count > 16)
        requant_high_mul16_step<kForm, kTrack>(second, static_cast<__mmask16>(count >= 32 ? 0xFFFFu : (1u << (count - 16)) - 1), h, d + 16, local);
    }
  }
  r = local;
}

// The sums of the plane: output (y, x) at sums[y*pitch + x], pitch = OW, or stride_h*QW when flat.
// Flat (rows of at most 16 outputs, phase rows without slack): blocks run over the flattened phase
// planes, where output (y, x) reads every tap at y*stride_h*QW + x + its offset, so a short row does not
// leave most of a block's lanes idle; the lanes between OW and the pitch sum windows that wrap across a
// row end (in-range values, bounded like every other sum) and are never read.
template <int kTaps>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int64_t sums_int16(const DepthwiseLayer& L, const Int16Plane& pl, const Int16Taps& k,
                                                                         int32_t* sums) {
  if (pl.flat) {
    const int64_t pitch = L.stride_h * pl.QW, total = (L.OH - 1) * pitch + L.OW;
    for (int64_t p0 = 0; p0 < total; p0 += 32) block_int16<kTaps>(pl.data + p0, k, std::min<int64_t>(32, total - p0), sums + p0);
    return pitch;
  }
  for (int64_t y = 0; y < L.OH; ++y) {
    const int16_t* base = pl.data + y * L.stride_h * pl.QW;
    for (int64_t x0 = 0; x0 < L.OW; x0 += 32) block_int16<kTaps>(base + x0, k, std::min<int64_t>(32, L.OW - x0), sums + y * L.OW + x0);
  }
  return L.OW;
}

// One output channel's sums (sums_int16) in a per-thread buffer; `pitch` receives their row pitch.
const int32_t* channel_sums_int16(const DepthwiseLayer& L, const Int16Plane& pl, Int16Taps& k, const int32_t* w, int64_t& pitch) {
  thread_local std::vector<int32_t> sums;
  const size_t size = static_cast<size_t>(L.OH * std::max(L.OW, L.stride_h * pl.QW) + 32);  // the largest pitch of sums_int16
  if (sums.size() < size) sums.resize(size);
  int16_pairs(k, w);
  pitch = with_taps(k.taps, [&]<int kTaps>() { return sums_int16<kTaps>(L, pl, k, sums.data()); });
  return sums.data();
}

// The byte kernel's sums of one output channel in a per-thread buffer; `pitch` receives their row pitch.
const int32_t* channel_sums_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, int64_t o, int64_t& pitch) {
  thread_local std::vector<int32_t> sums;
  const size_t size = static_cast<size_t>(L.OH * std::max(L.OW, L.PW) + 16);
  if (sums.size() < size) sums.resize(size);
  pitch = sums_bytes(L, B, plane, L.byte_taps[static_cast<size_t>(o)], sums.data());
  return sums.data();
}

// Output only: a plane's int32 sums (row pitch `pitch`) through the 16-lane route into the output bytes.
__attribute__((target("avx512f,avx512bw"))) void requant_rows16(const DepthwiseLayer& L, const int32_t* sums, int64_t pitch,
                                                                const HighMulChannel& h, int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r,
                                                                bool track) {
  Ranges32 local = r;  // in registers across the rows (the byte stores may alias r)
  for (int64_t y = 0; y < L.OH; ++y) requant_high_mul16(sums + y * pitch, L.OW, h, lo, hi, dst + y * L.OW, local, track);
  r = local;
}

// AVX2, the same scheme on 8 lanes: masked loads (vpmaskmovd), stride 2 as the even lanes of two loads
// (vpermd + blend), int64 widening with the bias, masked stores.
__attribute__((target("avx2"))) void plane_avx2_direct(const PlaneArgs& a, int64_t bias, int64_t* dst) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i evens_lo = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6), vbias = _mm256_set1_epi64x(bias);
  const int taps = static_cast<int>(a.KH * a.KW);
  int64_t offset[64];  // taps <= 64: the caller checks
  for (int t = 0; t < taps; ++t) offset[t] = (t / a.KW) * a.dilation_h * a.PW + (t % a.KW) * a.dilation_w;
  for (int64_t y = 0; y < a.OH; ++y) {
    for (int64_t x0 = 0; x0 < a.OW; x0 += 8) {
      const int n = static_cast<int>(std::min<int64_t>(8, a.OW - x0));
      const int span = a.stride_w == 1 ? n : 2 * (n - 1) + 1;
      const __m256i lo_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(std::min(span, 8)), lane);
      const __m256i hi_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(span - 8), lane);
      __m256i acc = _mm256_setzero_si256();
      for (int t = 0; t < taps; ++t) {
        const int32_t* in = a.plane + y * a.stride_h * a.PW + offset[t] + x0 * a.stride_w;
        __m256i v = _mm256_maskload_epi32(in, lo_mask);
        if (a.stride_w != 1) {
          const __m256i hi = _mm256_maskload_epi32(in + 8, hi_mask);
          v = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(v, evens_lo), _mm256_permutevar8x32_epi32(hi, evens_lo), 0xF0);
        }
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(v, _mm256_set1_epi32(a.weight[t])));
      }
      const __m256i out_lo = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc)), vbias);
      const __m256i out_hi = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc, 1)), vbias);
      const __m256i q = _mm256_setr_epi64x(0, 1, 2, 3);
      int64_t* d = dst + y * a.OW + x0;
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(d), _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), q), out_lo);
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(d + 4), _mm256_cmpgt_epi64(_mm256_set1_epi64x(n - 4), q), out_hi);
    }
  }
}

}  // namespace

MinMax run_depthwise(const DepthwiseLayer& L, const IntTensor& input, const OutputStage& out, Isa isa, ThreadPool& pool,
                     Workspace& ws) {
  return run_depthwise(L, ActSource::of(input.data.data()), input.dim(0), out, isa, pool, ws);
}

namespace {

template <class T>
void fill_plane(const DepthwiseLayer& L, const T* src_plane, int32_t* dst) {
  for (int64_t y = 0; y < L.H; ++y) {
    const T* src = src_plane + y * L.W;
    int32_t* d = dst + (y + L.pad_top) * L.PW + L.pad_left;
    for (int64_t x = 0; x < L.W; ++x) d[x] = static_cast<int32_t>(src[x]);  // the planner proved the range
  }
}

}  // namespace

MinMax run_depthwise(const DepthwiseLayer& L, const ActSource& input, int64_t N, const OutputStage& out, Isa isa,
                     ThreadPool& pool, Workspace&) {
  const int64_t m = L.O / L.C, P = L.OH * L.OW, plane_size = L.PH * L.PW;
  void (*plane_fn)(const PlaneArgs&);
  Path tier;
  switch (isa) {
    case Isa::avx512vnni:
    case Isa::avx512amx: plane_fn = L.acc32 ? plane_avx512_32 : plane_avx512_64, tier = Path::depthwise_avx512; break;
    case Isa::avx2: plane_fn = L.acc32 ? plane_avx2_32 : plane_avx2_64, tier = Path::depthwise_avx2; break;
    default: plane_fn = L.acc32 ? plane_scalar32 : plane_scalar64, tier = Path::depthwise_scalar; break;
  }
  const bool direct = isa != Isa::scalar && L.acc32 && (L.stride_w == 1 || L.stride_w == 2) && L.KH * L.KW <= 64;
  PerThread<MinMax> totals(pool);
  std::atomic<bool> compacted{false};  // some channel took requant_compact_bytes (path counter)
  std::atomic<bool> compacted_run{false};  // some task took requant_compact_bytes_run
  std::atomic<bool> register_run{false};  // ... with its planes in a register (L.register_windows)
  // A task: whole input planes, each padded into a per-thread plane (it stays in cache) and followed by
  // its m output channels; enough planes per task to amortize the per-task work on small planes.
  const int64_t per_task = pool.items_per_task(L.C, P * m);
  const int64_t chunks = (L.C + per_task - 1) / per_task;
  // Rows of at most 16 outputs run over the flattened planes (sums_int16).
  const bool flat = L.OW <= 16;
  const bool int16 = L.int16 && uses_avx512(isa) && L.KH * L.KW <= 64;
  // Packed bytes in: the byte kernel, without the int16 copy of the planes (depthwise_bytes_vbmi.h).
  const BytesDepthwise bytes = bytes_depthwise_for(L, input, isa);
  // Phase rows: slack so that a 32-lane load never leaves its row; flat: the phase row exactly.
  const int64_t QW = (L.PW + L.stride_w - 1) / L.stride_w + (flat ? 0 : 32);
  if (int16 || bytes.ok) {
    // Output only, bytes out: channels whose requant has the 16-lane route (decided by the planner) go
    // from int32 sums to bytes without an int64 plane.
    const HighMulChannel* high_mul =
        out.acc_out == nullptr && out.requant_out == nullptr && out.narrow_out != nullptr && out.requant != nullptr ? out.high_mul : nullptr;
    pool.run(N * chunks, [&](int64_t task) {
      const int64_t n = task / chunks, c_begin = task % chunks * per_task, c_end = std::min(L.C, c_begin + per_task);
      MinMax mm;
      Int16Taps k;  // offsets on the first plane, pairs per channel
      Ranges32 r;
      init_ranges32(r);
      // The compacted byte kernel on every channel of the task: one call for the whole run.
      const bool channel_run = bytes.ok && bytes.chunks > 0 && m == 1 && high_mul != nullptr &&
                       std::all_of(high_mul + c_begin, high_mul + c_end, [](const HighMulChannel& h) { return h.ok; });
      if (channel_run) {
        requant_compact_bytes_run(L, bytes, input.bytes + n * L.C * L.H * L.W, c_begin, c_end, high_mul, static_cast<int32_t>(out.requant->lo()),
                                  static_cast<int32_t>(out.requant->hi()), out.narrow_out + n * L.O * P, r, !out.ranges_proven);
        mark_taken(compacted), mark_taken(compacted_run);
        if (!L.register_windows.empty()) mark_taken(register_run);
      }
      for (int64_t c = channel_run ? c_end : c_begin; c < c_end; ++c) {
        const int64_t nc = n * L.C + c;
        thread_local std::vector<int16_t> phases;
        const size_t size = static_cast<size_t>(L.stride_w * L.PH * QW + 64);
        if (!bytes.ok && phases.size() < size) phases.assign(size, 0);
        const int64_t at = nc * L.H * L.W;
        const uint8_t* byte_plane = nullptr;  // the byte kernel's input: the plane itself, or its padded copy (flat)
        if (bytes.ok && bytes.flat) {
          thread_local std::vector<uint8_t> padded;
          if (padded.size() < static_cast<size_t>(L.PH * L.PW + 64)) padded.assign(static_cast<size_t>(L.PH * L.PW + 64), 0);
          pad_plane_bytes(L, bytes, input.bytes + at, padded.data());
          byte_plane = padded.data();
        } else if (bytes.ok) {
          byte_plane = input.bytes + at;
        } else {
          input.visit([&](auto data) { fill_int16_phases(L, data + at, phases.data(), QW); });
        }
        const Int16Plane pl{phases.data(), L.PH, QW, L.stride_w, flat};
        if (k.taps == 0 && !bytes.ok) k = int16_offsets(L, pl);
        for (int64_t o = c * m; o < (c + 1) * m; ++o) {
          const int64_t no = n * L.O + o;
          const int32_t* w = L.weight.data() + o * L.KH * L.KW;
          if (bytes.ok && high_mul != nullptr && high_mul[o].ok && (!bytes.flat || bytes.chunks > 0)) {
            const BytesTaps& t = L.byte_taps[static_cast<size_t>(o)];
            const int32_t lo = static_cast<int32_t>(out.requant->lo()), hi = static_cast<int32_t>(out.requant->hi());
            if (bytes.chunks > 0) {
              requant_compact_bytes(L, bytes, byte_plane, t, high_mul[o], lo, hi, out.narrow_out + no * P, r, !out.ranges_proven);
              mark_taken(compacted);
            } else {
              requant_plane_bytes(L, bytes, byte_plane, t, high_mul[o], lo, hi, out.narrow_out + no * P, r, !out.ranges_proven);
            }
            continue;
          }
          if (high_mul != nullptr && high_mul[o].ok && !flat && !bytes.ok) {
            // Output only: the 16-lane route on each block's sums in registers, into the output bytes.
            int16_pairs(k, w);
            const int32_t lo = static_cast<int32_t>(out.requant->lo()), hi = static_cast<int32_t>(out.requant->hi());
            with_taps(k.taps, [&]<int kTaps>() {
              constexpr Form16 kFma = Form16::fma, kLeft = Form16::shift_left, kShift = Form16::shift;
              const Form16 form = form16(high_mul[o]);
              (out.ranges_proven ? (form == kFma    ? requant_plane_int16<kFma, false, kTaps>
                                    : form == kLeft ? requant_plane_int16<kLeft, false, kTaps>
                                                    : requant_plane_int16<kShift, false, kTaps>)
                                 : (form == kFma    ? requant_plane_int16<kFma, true, kTaps>
                                    : form == kLeft ? requant_plane_int16<kLeft, true, kTaps>
                                                    : requant_plane_int16<kShift, true, kTaps>))(L, pl, k, high_mul[o], lo, hi,
                                                                                                 out.narrow_out + no * P, r);
            });
            continue;
          }
          int64_t pitch = 0;
          const int32_t* sums = bytes.ok ? channel_sums_bytes(L, bytes, byte_plane, o, pitch) : channel_sums_int16(L, pl, k, w, pitch);
          if (high_mul != nullptr && high_mul[o].ok) {
            // Output only, flat planes: the 16-lane route straight into the output bytes, row by row.
            requant_rows16(L, sums, pitch, high_mul[o], static_cast<int32_t>(out.requant->lo()), static_cast<int32_t>(out.requant->hi()),
                           out.narrow_out + no * P, r, !out.ranges_proven);
            continue;
          }
          // Otherwise widened with the bias into an int64 plane.
          thread_local std::vector<int64_t> local;
          if (out.acc_out == nullptr && local.size() < static_cast<size_t>(P)) local.resize(static_cast<size_t>(P));
          int64_t* dst = out.acc_out != nullptr ? out.acc_out + no * P : local.data();
          const int64_t bias = L.bias[static_cast<size_t>(o)];
          for (int64_t y = 0; y < L.OH; ++y)
            for (int64_t x = 0; x < L.OW; ++x) dst[y * L.OW + x] = static_cast<int64_t>(sums[y * pitch + x]) + bias;
          MinMax run;
          out.min_max(dst, P, run.acc_min, run.acc_max);
          finish_run(out, n, o, 0, P, run, dst);
          mm.merge(run);
        }
      }
      merge_ranges32(r, mm);
      totals.local().merge(mm);
    });
    PathCounters& pc = path_counters();
    pc.add(bytes.ok ? Path::depthwise_bytes_vbmi : Path::depthwise_int16_avx512);
    if (compacted.load()) pc.add(Path::depthwise_bytes_compact);
    if (compacted_run.load()) pc.add(Path::depthwise_bytes_compact_run);
    if (register_run.load()) pc.add(Path::depthwise_bytes_register_windows);
    pc.add(Path::depthwise_acc32);
    if (high_mul != nullptr) pc.add(out.ranges_proven ? Path::requant_high_mul16_untracked : Path::requant_high_mul16);
    if (high_mul != nullptr && out.high_mul_fma) pc.add(Path::requant_fma16);
    return merged(totals);
  }
  pool.run(N * chunks, [&](int64_t task) {
    const int64_t n = task / chunks, c_begin = task % chunks * per_task, c_end = std::min(L.C, c_begin + per_task);
    MinMax mm;
    for (int64_t c = c_begin; c < c_end; ++c) {
      const int64_t nc = n * L.C + c;
      thread_local std::vector<int32_t> padded;
      if (padded.size() < static_cast<size_t>(plane_size)) padded.resize(static_cast<size_t>(plane_size));
      int32_t* plane = padded.data();
      // Only the border gets pad_value; the interior is written by fill_plane.
      const int32_t pad = static_cast<int32_t>(L.pad_value);
      std::fill(plane, plane + L.pad_top * L.PW, pad);
      std::fill(plane + (L.pad_top + L.H) * L.PW, plane + plane_size, pad);
      for (int64_t y = 0; y < L.H; ++y) {
        int32_t* prow = plane + (y + L.pad_top) * L.PW;
        std::fill(prow, prow + L.pad_left, pad);
        std::fill(prow + L.pad_left + L.W, prow + L.PW, pad);
      }
      const int64_t at = nc * L.H * L.W;
      input.visit([&](auto data) { fill_plane(L, data + at, plane); });
      for (int64_t o = c * m; o < (c + 1) * m; ++o) {
        const int64_t no = n * L.O + o;
        PlaneArgs a{plane, L.weight.data() + o * L.KH * L.KW, L.PW, L.OH, L.OW, L.KH, L.KW,
                    L.stride_h, L.stride_w, L.dilation_h, L.dilation_w, nullptr};
        thread_local std::vector<int64_t> local;  // without a trace tensor: the plane's accumulators
        if (out.acc_out == nullptr && local.size() < static_cast<size_t>(P)) local.resize(static_cast<size_t>(P));
        int64_t* dst = out.acc_out != nullptr ? out.acc_out + no * P : local.data();  // (n, o) plane of the NCHW output
        a.acc = dst;
        const int64_t bias = L.bias[static_cast<size_t>(o)];
        if (direct && uses_avx512(isa)) {
          plane_avx512_direct(a, bias, dst);
        } else if (direct) {
          plane_avx2_direct(a, bias, dst);
        } else if (L.acc32) {
          thread_local std::vector<int32_t> acc32;
          acc32.resize(static_cast<size_t>(P));
          a.acc = acc32.data();
          plane_fn(a);
          for (int64_t p = 0; p < P; ++p) dst[p] = static_cast<int64_t>(acc32[static_cast<size_t>(p)]) + bias;
        } else {
          plane_fn(a);
          for (int64_t p = 0; p < P; ++p) dst[p] += bias;
        }
        MinMax run;
        out.min_max(dst, P, run.acc_min, run.acc_max);
        finish_run(out, n, o, 0, P, run, dst);
        mm.merge(run);
      }
    }
    totals.local().merge(mm);
  });
  PathCounters& pc = path_counters();
  pc.add(tier);
  pc.add(L.acc32 ? Path::depthwise_acc32 : Path::depthwise_acc64);
  return merged(totals);
}

}  // namespace qv::integer
