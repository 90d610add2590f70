#include "integer/depthwise.h"

#include "integer/tensor_alloc.h"

#include <immintrin.h>

#include <algorithm>
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
                     ThreadPool& pool, Workspace& ws) {
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
  // Padded int32 planes, one per (n, c).
  int32_t* planes = scratch(ws.planes, N * L.C * plane_size);
  pool.run(N * L.C, [&](int64_t nc) {
    int32_t* dst = planes + nc * plane_size;
    // Only the border gets pad_value; the interior is written by fill_plane.
    const int32_t pad = static_cast<int32_t>(L.pad_value);
    std::fill(dst, dst + L.pad_top * L.PW, pad);
    std::fill(dst + (L.pad_top + L.H) * L.PW, dst + plane_size, pad);
    for (int64_t y = 0; y < L.H; ++y) {
      int32_t* r = dst + (y + L.pad_top) * L.PW;
      std::fill(r, r + L.pad_left, pad);
      std::fill(r + L.pad_left + L.W, r + L.PW, pad);
    }
    const int64_t at = nc * L.H * L.W;
    if (input.wide != nullptr)
      fill_plane(L, input.wide + at, dst);
    else if (input.is_signed)
      fill_plane(L, reinterpret_cast<const int8_t*>(input.bytes) + at, dst);
    else
      fill_plane(L, input.bytes + at, dst);
  });
  MinMax total;
  std::mutex total_mutex;
  pool.run(N * L.O, [&](int64_t no) {
    const int64_t n = no / L.O, o = no % L.O, c = o / m;
    thread_local std::vector<int64_t> local;  // without a trace tensor: the plane's accumulators
    if (out.acc_out == nullptr && local.size() < static_cast<size_t>(P)) local.resize(static_cast<size_t>(P));
    int64_t* dst = out.acc_out != nullptr ? out.acc_out + no * P : local.data();  // (n, o) plane of the NCHW output
    const int64_t bias = L.bias[static_cast<size_t>(o)];
    PlaneArgs a{planes + (n * L.C + c) * plane_size, L.weight.data() + o * L.KH * L.KW, L.PW, L.OH, L.OW, L.KH, L.KW,
                L.stride_h, L.stride_w, L.dilation_h, L.dilation_w, dst};
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
    MinMax mm;
    out.min_max(dst, P, mm.acc_min, mm.acc_max);
    finish_run(out, n, o, 0, P, mm, dst);
    std::lock_guard<std::mutex> lock(total_mutex);
    total.merge(mm);
  });
  PathCounters& pc = path_counters();
  pc.add(tier);
  pc.add(L.acc32 ? Path::depthwise_acc32 : Path::depthwise_acc64);
  return total;
}

}  // namespace qv::integer
