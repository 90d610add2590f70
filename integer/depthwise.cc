#include "integer/depthwise.h"

#include "integer/requant16_avx512.h"
#include "integer/tensor_alloc.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
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

// The 16-lane requant route of one output channel (requant16_avx512.h).
struct HighMulChannel {
  FusedRequant::HighMulParams params;
  int32_t add = 0;  // the bias: accumulator = sum + add, inside int32 (checked by the caller)
  bool ok = false;
};

__attribute__((target("avx512f"))) void merge_ranges32(const Ranges32& r, MinMax& mm) {
  alignas(64) int32_t a0[16], a1[16], y0[16], y1[16];
  _mm512_store_si512(a0, r.acc_lo), _mm512_store_si512(a1, r.acc_hi), _mm512_store_si512(y0, r.y_lo), _mm512_store_si512(y1, r.y_hi);
  for (int j = 0; j < 16; ++j) {
    if (a0[j] > a1[j]) continue;  // a lane no value reached
    mm.acc_min = std::min<int64_t>(mm.acc_min, a0[j]), mm.acc_max = std::max<int64_t>(mm.acc_max, a1[j]);
    mm.y_min = std::min<int64_t>(mm.y_min, y0[j]), mm.y_max = std::max<int64_t>(mm.y_max, y1[j]);
  }
}

// Output only: the same sums as plane_avx512_direct, a row at a time into an int32 row that the 16-lane
// route requantizes straight into the output bytes, tracking accumulator and output ranges.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void plane_avx512_requant(const PlaneArgs& a, const HighMulChannel& h,
                                                                                       int32_t lo, int32_t hi, uint8_t* dst,
                                                                                       MinMax& mm) {
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const int taps = static_cast<int>(a.KH * a.KW);
  int64_t offset[64];  // taps <= 64: the caller checks
  __m512i weight[64];
  for (int t = 0; t < taps; ++t) {
    offset[t] = (t / a.KW) * a.dilation_h * a.PW + (t % a.KW) * a.dilation_w;
    weight[t] = _mm512_set1_epi32(a.weight[t]);
  }
  thread_local std::vector<int32_t> row;
  if (row.size() < static_cast<size_t>(a.OW + 16)) row.resize(static_cast<size_t>(a.OW + 16));
  Ranges32 r;
  init_ranges32(r);
  for (int64_t y = 0; y < a.OH; ++y) {
    for (int64_t x0 = 0; x0 < a.OW; x0 += 16) {
      const int n = static_cast<int>(std::min<int64_t>(16, a.OW - x0));
      const int span = a.stride_w == 1 ? n : 2 * (n - 1) + 1;
      const __mmask16 lo_mask = static_cast<__mmask16>(span >= 16 ? 0xFFFFu : (1u << span) - 1);
      const __mmask16 hi_mask = static_cast<__mmask16>(span <= 16 ? 0u : (1u << (span - 16)) - 1);
      __m512i acc = _mm512_setzero_si512();
      const int32_t* base = a.plane + y * a.stride_h * a.PW + x0 * a.stride_w;
      for (int t = 0; t < taps; ++t) {
        const int32_t* in = base + offset[t];
        __m512i v;
        if (a.stride_w == 1) {
          v = _mm512_maskz_loadu_epi32(lo_mask, in);
        } else {
          v = _mm512_permutex2var_epi32(_mm512_maskz_loadu_epi32(lo_mask, in), evens, _mm512_maskz_loadu_epi32(hi_mask, in + 16));
        }
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(v, weight[t]));
      }
      _mm512_storeu_si512(row.data() + x0, acc);
    }
    requant_high_mul16(row.data(), a.OW, h.params, h.add, lo, hi, dst + y * a.OW, r);
  }
  merge_ranges32(r, mm);
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
  // Output only, bytes out, AVX-512: channels whose requant has the 16-lane route over the proven range
  // of their sums go from int32 sums to bytes without an int64 plane.
  std::vector<HighMulChannel> high_mul;
  bool any_high_mul = false;
  if (direct && uses_avx512(isa) && out.acc_out == nullptr && out.requant_out == nullptr && out.narrow_out != nullptr &&
      out.requant != nullptr) {
    high_mul.resize(static_cast<size_t>(L.O));
    for (int64_t o = 0; o < L.O; ++o) {
      HighMulChannel& h = high_mul[static_cast<size_t>(o)];
      const int64_t bias = L.bias[static_cast<size_t>(o)], bound = L.sum_bound[static_cast<size_t>(o)];
      h.ok = std::abs(bias) <= INT32_MAX - bound && out.requant->high_mul_params(static_cast<size_t>(o), bias, -bound, bound, h.params);
      h.add = h.ok ? static_cast<int32_t>(bias) : 0;
      any_high_mul = any_high_mul || h.ok;
    }
  }
  MinMax total;
  std::mutex total_mutex;
  // A task: one (n, c) input plane, padded into a per-thread int32 plane (it stays in cache), and its m
  // output channels.
  pool.run(N * L.C, [&](int64_t nc) {
    const int64_t n = nc / L.C, c = nc % L.C;
    thread_local std::vector<int32_t> padded;
    if (padded.size() < static_cast<size_t>(plane_size)) padded.resize(static_cast<size_t>(plane_size));
    int32_t* plane = padded.data();
    // Only the border gets pad_value; the interior is written by fill_plane.
    const int32_t pad = static_cast<int32_t>(L.pad_value);
    std::fill(plane, plane + L.pad_top * L.PW, pad);
    std::fill(plane + (L.pad_top + L.H) * L.PW, plane + plane_size, pad);
    for (int64_t y = 0; y < L.H; ++y) {
      int32_t* r = plane + (y + L.pad_top) * L.PW;
      std::fill(r, r + L.pad_left, pad);
      std::fill(r + L.pad_left + L.W, r + L.PW, pad);
    }
    const int64_t at = nc * L.H * L.W;
    if (input.wide != nullptr)
      fill_plane(L, input.wide + at, plane);
    else if (input.is_signed)
      fill_plane(L, reinterpret_cast<const int8_t*>(input.bytes) + at, plane);
    else
      fill_plane(L, input.bytes + at, plane);
    MinMax mm;
    for (int64_t o = c * m; o < (c + 1) * m; ++o) {
      const int64_t no = n * L.O + o;
      PlaneArgs a{plane, L.weight.data() + o * L.KH * L.KW, L.PW, L.OH, L.OW, L.KH, L.KW,
                  L.stride_h, L.stride_w, L.dilation_h, L.dilation_w, nullptr};
      if (any_high_mul && high_mul[static_cast<size_t>(o)].ok) {
        plane_avx512_requant(a, high_mul[static_cast<size_t>(o)], static_cast<int32_t>(out.requant->lo()),
                             static_cast<int32_t>(out.requant->hi()), out.narrow_out + no * P, mm);
        continue;
      }
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
    std::lock_guard<std::mutex> lock(total_mutex);
    total.merge(mm);
  });
  PathCounters& pc = path_counters();
  pc.add(tier);
  pc.add(L.acc32 ? Path::depthwise_acc32 : Path::depthwise_acc64);
  if (any_high_mul) pc.add(Path::requant_high_mul16);
  return total;
}

}  // namespace qv::integer
