#include "integer/conv_gemm.h"

#include "integer/conv_rows.h"
#include "integer/per_thread.h"
#include "integer/requant8_avx512.h"
#include "integer/tensor_alloc.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace qv::integer {

namespace {

// The granule of lane values v[0..granule), each already offset into the packed operand's range.
inline uint32_t lane_bits(int64_t v, int lane, int64_t granule) {
  return granule == 4 ? static_cast<uint32_t>(static_cast<uint8_t>(v)) << (8 * lane)
                      : static_cast<uint32_t>(static_cast<uint16_t>(v)) << (16 * lane);
}

// Image [N][G][PH][PW][pq] of granules; padding holds pad_value - offset, lanes past Cg hold 0. Every
// granule is written (the workspace is reused, not cleared). Q8S: a pixel's cq granules of low bytes,
// then its cq granules of high bytes.
template <class T>
const uint32_t* pack_image_t(const GemmLayer& L, const T* data, int64_t N, ThreadPool& pool, Workspace& ws) {
  const bool split = L.pq != L.cq;
  const int64_t row_granules = L.PW * L.pq;
  uint32_t* image = scratch(ws.image, N * L.G * L.PH * row_granules);
  std::vector<uint32_t> pad(static_cast<size_t>(L.pq), 0);
  for (int64_t c = 0; c < L.Cg; ++c) {
    const int64_t v = L.pad_value - L.act_offset;
    pad[static_cast<size_t>(c / L.granule)] |= lane_bits(split ? v & 0xFF : v, static_cast<int>(c % L.granule), L.granule);
    if (split) pad[static_cast<size_t>(L.cq + c / L.granule)] |= lane_bits(v >> 8, static_cast<int>(c % L.granule), L.granule);
  }
  const int64_t rows = N * L.G * L.PH;
  const int64_t rows_per_task = std::max<int64_t>(1, rows / (8 * pool.threads()));
  pool.run((rows + rows_per_task - 1) / rows_per_task, [&](int64_t task) {
    for (int64_t r = task * rows_per_task; r < std::min(rows, (task + 1) * rows_per_task); ++r) {
      const int64_t py = r % L.PH, ng = r / L.PH, g = ng % L.G, n = ng / L.G;
      uint32_t* row = image + r * row_granules;
      const int64_t iy = py - L.pad_top;
      const bool pad_row = iy < 0 || iy >= L.H;
      for (int64_t px = 0; px < L.PW; ++px) {
        const int64_t ix = px - L.pad_left;
        if (pad_row || ix < 0 || ix >= L.W) std::copy(pad.begin(), pad.end(), row + px * L.pq);
      }
      if (pad_row) continue;
      // Interior: each lane written once as a byte (Q8) or two bytes (Q16), blocks of 16 pixels so that
      // the channel planes read and the granule rows written stay in L1. Lanes past Cg are zero.
      unsigned char* bytes = reinterpret_cast<unsigned char*>(row + L.pad_left * L.pq);
      const int64_t pixel_bytes = L.pq * 4, lanes = L.cq * L.granule;
      for (int64_t x0 = 0; x0 < L.W; x0 += 16) {
        const int64_t x1 = std::min(L.W, x0 + 16);
        int64_t c_done = 0;
        if constexpr (sizeof(T) == 1) {
          // Packed 8-bit source (evaluate_output), Q8, 16 whole pixels: four channel rows interleaved in
          // registers into 16 granules, each stored as one 32-bit word. value - offset is taken modulo 256
          // on the raw bytes: exact, since the planner proved the packed value lies in [0, 255].
          if (L.granule == 4 && !split && x1 - x0 == 16) {
            const __m128i off = _mm_set1_epi8(static_cast<char>(static_cast<uint8_t>(L.act_offset)));
            uint32_t* words = row + L.pad_left * L.cq;
            for (; c_done + 4 <= L.Cg; c_done += 4) {
              const T* s0 = data + ((n * L.C + g * L.Cg + c_done) * L.H + iy) * L.W + x0;
              const int64_t cs = L.H * L.W;  // channel stride
              const __m128i a = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s0)), off);
              const __m128i b = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s0 + cs)), off);
              const __m128i c = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s0 + 2 * cs)), off);
              const __m128i d = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s0 + 3 * cs)), off);
              const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
              const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
              alignas(16) uint32_t gr[16];
              _mm_store_si128(reinterpret_cast<__m128i*>(gr), _mm_unpacklo_epi16(ab_lo, cd_lo));
              _mm_store_si128(reinterpret_cast<__m128i*>(gr + 4), _mm_unpackhi_epi16(ab_lo, cd_lo));
              _mm_store_si128(reinterpret_cast<__m128i*>(gr + 8), _mm_unpacklo_epi16(ab_hi, cd_hi));
              _mm_store_si128(reinterpret_cast<__m128i*>(gr + 12), _mm_unpackhi_epi16(ab_hi, cd_hi));
              uint32_t* w = words + x0 * L.cq + c_done / 4;
              for (int i = 0; i < 16; ++i) w[i * L.cq] = gr[i];
            }
          }
        }
        for (int64_t c = c_done; c < L.Cg; ++c) {
          const T* src = data + ((n * L.C + g * L.Cg + c) * L.H + iy) * L.W;
          if (split) {
            for (int64_t x = x0; x < x1; ++x) {
              const int64_t v = static_cast<int64_t>(src[x]) - L.act_offset;  // in [0, 65535]: proven by the planner
              bytes[x * pixel_bytes + c] = static_cast<unsigned char>(v), bytes[x * pixel_bytes + 4 * L.cq + c] = static_cast<unsigned char>(v >> 8);
            }
          } else if (L.granule == 4) {
            for (int64_t x = x0; x < x1; ++x) bytes[x * pixel_bytes + c] = static_cast<unsigned char>(static_cast<int64_t>(src[x]) - L.act_offset);
          } else {
            for (int64_t x = x0; x < x1; ++x) {
              const uint16_t v = static_cast<uint16_t>(static_cast<int64_t>(src[x]) - L.act_offset);
              std::memcpy(bytes + x * pixel_bytes + 2 * c, &v, 2);
            }
          }
        }
        for (int64_t c = L.Cg; c < lanes; ++c)
          for (int64_t x = x0; x < x1; ++x) {
            std::memset(bytes + x * pixel_bytes + c * (4 / L.granule), 0, static_cast<size_t>(4 / L.granule));
            if (split) bytes[x * pixel_bytes + 4 * L.cq + c] = 0;
          }
      }
    }
  });
  return image;
}

const uint32_t* pack_image(const GemmLayer& L, const ActSource& in, int64_t N, ThreadPool& pool, Workspace& ws) {
  return in.visit([&](auto data) { return pack_image_t(L, data, N, pool, ws); });
}

// The output transpose of an int32 tile on AVX-512: per channel, the mr (<= 8) pixel values gathered from
// the pixel-major tile, widened to int64 with the channel's add, stored as one masked run, and the range
// tracked in vectors. The same result as the scalar loop in run_gemm.
__attribute__((target("avx512f,avx512vl,avx512dq"))) void transpose_tile_avx512(const int32_t* tile32, int64_t row, int64_t mr,
                                                                               int64_t channels, const int64_t* add, int64_t* dst,
                                                                               int64_t dst_stride, MinMax& mm) {
  const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int32_t>(row)));
  const __mmask8 mask = static_cast<__mmask8>((1u << mr) - 1);
  __m512i vlo = _mm512_set1_epi64(INT64_MAX), vhi = _mm512_set1_epi64(INT64_MIN);
  for (int64_t c = 0; c < channels; ++c) {
    const __m256i g = _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), mask, idx, tile32 + c, 4);
    const __m512i v = _mm512_add_epi64(_mm512_maskz_cvtepi32_epi64(0xFF, g), _mm512_set1_epi64(add[c]));
    _mm512_mask_storeu_epi64(dst + c * dst_stride, mask, v);
    vlo = _mm512_mask_min_epi64(vlo, mask, vlo, v), vhi = _mm512_mask_max_epi64(vhi, mask, vhi, v);
  }
  alignas(64) int64_t los[8], his[8];
  _mm512_store_si512(los, vlo), _mm512_store_si512(his, vhi);
  for (int j = 0; j < 8; ++j) mm.acc_min = std::min(mm.acc_min, los[j]), mm.acc_max = std::max(mm.acc_max, his[j]);
}

// The output-only stage on AVX-512, straight from the int32 tile: per channel, the mr pixel values are
// gathered, widened with the channel's add, requantized in registers by the int64 shift route (the same
// decisions as shift_avx512 in requant_stage.cc: int64 multiply-add, rounding shift, clamp) and stored
// as bytes into the NCHW packed output; accumulator and output ranges are tracked in vectors. No int64
// value goes to memory. Accumulators outside their declared type make the evaluator throw afterwards,
// so the bytes computed from them are never read.
template <Rounding R>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw"))) void tile_requant8_avx512(const int32_t* tile32, int64_t row, int64_t mr,
                                                                                       int64_t channels, const int64_t* add,
                                                                                       const Requant8& rq, uint8_t* dst,
                                                                                       int64_t dst_stride, MinMax& mm) {
  const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int32_t>(row)));
  const __mmask8 mask = static_cast<__mmask8>((1u << mr) - 1), all = 0xFF;
  const __m512i vlo = _mm512_set1_epi64(rq.lo), vhi = _mm512_set1_epi64(rq.hi);
  __m512i alo = _mm512_set1_epi64(INT64_MAX), ahi = _mm512_set1_epi64(INT64_MIN), ylo = alo, yhi = ahi;
  for (int64_t c = 0; c < channels; ++c) {
    const __m256i g = _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), mask, idx, tile32 + c, 4);
    const __m512i acc = _mm512_add_epi64(_mm512_maskz_cvtepi32_epi64(all, g), _mm512_set1_epi64(add[c]));
    alo = _mm512_mask_min_epi64(alo, mask, alo, acc), ahi = _mm512_mask_max_epi64(ahi, mask, ahi, acc);
    const __m512i y = requant_shift8<R>(acc, rq.params[c], vlo, vhi);
    ylo = _mm512_mask_min_epi64(ylo, mask, ylo, y), yhi = _mm512_mask_max_epi64(yhi, mask, yhi, y);
    _mm512_mask_cvtepi64_storeu_epi8(dst + c * dst_stride, mask, y);
  }
  alignas(64) int64_t a0[8], a1[8], y0[8], y1[8];
  _mm512_store_si512(a0, alo), _mm512_store_si512(a1, ahi), _mm512_store_si512(y0, ylo), _mm512_store_si512(y1, yhi);
  for (int j = 0; j < 8; ++j) {
    mm.acc_min = std::min(mm.acc_min, a0[j]), mm.acc_max = std::max(mm.acc_max, a1[j]);
    mm.y_min = std::min(mm.y_min, y0[j]), mm.y_max = std::max(mm.y_max, y1[j]);
  }
}

using TileRequant8 = void (*)(const int32_t*, int64_t, int64_t, int64_t, const int64_t*, const Requant8&, uint8_t*, int64_t, MinMax&);

TileRequant8 tile_requant8_for(Rounding r) {
  return with_rounding(r, [](auto R) -> TileRequant8 { return tile_requant8_avx512<R.value>; });
}

}  // namespace

MinMax run_gemm(const GemmLayer& L, const IntTensor& input, const OutputStage& out, ThreadPool& pool, Workspace& ws) {
  return run_gemm(L, ActSource::of(input.data.data()), input.dim(0), out, pool, ws);
}

MinMax run_gemm(const GemmLayer& L, const ActSource& input, int64_t N, const OutputStage& out, ThreadPool& pool, Workspace& ws) {
  if (L.rows != GemmLayer::Rows::none) return run_conv_rows(L, input, N, out, pool, ws);
  const uint32_t* image = pack_image(L, input, N, pool, ws);
  const GemmKernel& kernel = *L.kernel;
  const int64_t P = L.OH * L.OW;
  const int64_t MR = kernel.max_mr, NV = kernel.max_nv;
  const int64_t strips = (P + MR - 1) / MR;
  const int64_t super_blocks = (L.blocks + NV - 1) / NV;
  const int64_t units = N * L.G * super_blocks * strips;
  const int64_t strips_per_task = std::clamp<int64_t>(units / (16 * pool.threads()), 1, strips);
  const int64_t strip_tasks = (strips + strips_per_task - 1) / strips_per_task;
  const int64_t tasks = N * L.G * super_blocks * strip_tasks;
  const bool chunked = L.chunk < L.kg;
  const bool avx512 = kernel.path == Path::gemm_q8_avx512vnni || kernel.path == Path::gemm_q16_avx512vnni || kernel.path == Path::gemm_q8_amx ||
                     kernel.path == Path::gemm_q8_split_avx512vnni;
  // Output only, 8-bit requant output, every channel on the int64 shift route: requantize in registers
  // straight from the int32 tile (tile_requant8_avx512), no accumulator buffer.
  const FusedRequant::ShiftParams* shift_params = nullptr;
  TileRequant8 tile_requant8 = nullptr;
  if (avx512 && !chunked && out.acc_out == nullptr && out.requant_out == nullptr && out.narrow_out != nullptr && out.requant != nullptr &&
      std::all_of(out.requant->has_shift(), out.requant->has_shift() + out.O, [](char h) { return h != 0; })) {
    shift_params = out.requant->shift_table();
    tile_requant8 = tile_requant8_for(out.requant->shift_rounding());
  }
  const Requant8 rq8{shift_params, out.requant != nullptr ? out.requant->lo() : 0, out.requant != nullptr ? out.requant->hi() : 0};

  PerThread<MinMax> totals(pool);
  pool.run(tasks, [&](int64_t task) {
    const int64_t st = task % strip_tasks;
    int64_t rest = task / strip_tasks;
    const int64_t sb = rest % super_blocks;
    rest /= super_blocks;
    const int64_t g = rest % L.G, n = rest / L.G;
    const int64_t nv = std::min(NV, L.blocks - sb * NV);
    const uint32_t* img = image + (n * L.G + g) * L.PH * L.PW * L.pq;
    int32_t tile32[32 * 64];  // [pixel][channel] of one micro-tile: up to 32 pixels (AMX) x 64 channels
    int64_t tile64[32 * 64];
    MinMax mm;
    // Without a trace tensor the accumulators of the task go to a per-thread buffer [channel][pixel].
    const int64_t p_begin = st * strips_per_task * MR, p_end = std::min(P, (st + 1) * strips_per_task * MR), span = p_end - p_begin;
    thread_local std::vector<int64_t> local;
    if (out.acc_out == nullptr && tile_requant8 == nullptr && local.size() < static_cast<size_t>(nv * 16 * span)) local.resize(static_cast<size_t>(nv * 16 * span));
    MicroTile t{};
    t.tap_offset = L.tap_offset.data();
    t.cq = L.cq;
    t.high = L.pq - L.cq;
    t.weight = L.weight.data() + (g * L.blocks + sb * NV) * L.kg * 16;
    t.block_stride = L.kg * 16;
    t.out = tile32;
    t.nv = static_cast<int>(nv);
    for (int64_t s = st * strips_per_task; s < std::min(strips, (st + 1) * strips_per_task); ++s) {
      const int64_t p0 = s * MR, mr = std::min(MR, P - p0);
      t.mr = static_cast<int>(mr);
      for (int64_t i = 0; i < mr; ++i) {
        const int64_t oy = (p0 + i) / L.OW, ox = (p0 + i) % L.OW;
        t.pixel[i] = img + (oy * L.stride_h * L.PW + ox * L.stride_w) * L.pq;
      }
      if (!chunked) {
        t.k_begin = 0, t.k_end = L.kg;
        kernel.fn(t);
      } else {
        for (int64_t k0 = 0; k0 < L.kg; k0 += L.chunk) {
          t.k_begin = k0, t.k_end = std::min(L.kg, k0 + L.chunk);
          kernel.fn(t);
          for (int64_t e = 0; e < mr * nv * 16; ++e) tile64[e] = (k0 == 0 ? 0 : tile64[e]) + tile32[e];
        }
      }
      // Transpose the pixel-major tile into the channel planes, adding offset compensation and bias.
      const int64_t channels = std::min<int64_t>(nv * 16, L.Og - sb * NV * 16);
      const int64_t row = nv * 16;
      // The AVX-512 output stages take 8 pixels per vector: groups of 8 rows of the tile.
      if (tile_requant8 != nullptr) {
        const int64_t o0 = g * L.Og + sb * NV * 16;
        const Requant8 r{rq8.params + o0, rq8.lo, rq8.hi};
        for (int64_t i0 = 0; i0 < mr; i0 += 8)
          tile_requant8(tile32 + i0 * row, row, std::min<int64_t>(8, mr - i0), channels, L.out_add.data() + o0, r,
                        out.narrow_out + (n * out.O + o0) * out.plane + p0 + i0, out.plane, mm);
        continue;
      }
      if (avx512 && !chunked) {
        const int64_t o0 = g * L.Og + sb * NV * 16;
        for (int64_t i0 = 0; i0 < mr; i0 += 8) {
          const int64_t m8 = std::min<int64_t>(8, mr - i0);
          if (out.acc_out != nullptr)
            transpose_tile_avx512(tile32 + i0 * row, row, m8, channels, L.out_add.data() + o0,
                                  out.acc_out + (n * out.O + o0) * out.plane + p0 + i0, out.plane, mm);
          else
            transpose_tile_avx512(tile32 + i0 * row, row, m8, channels, L.out_add.data() + o0, local.data() + (p0 + i0 - p_begin), span, mm);
        }
        continue;
      }
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t o = g * L.Og + sb * NV * 16 + c;
        const int64_t add = L.out_add[static_cast<size_t>(o)];
        int64_t* dst = out.acc_out != nullptr ? out.acc_out + (n * out.O + o) * out.plane + p0 : local.data() + c * span + (p0 - p_begin);
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        if (chunked) {
          for (int64_t i = 0; i < mr; ++i) {
            dst[i] = tile64[i * row + c] + add;
            lo = std::min(lo, tile64[i * row + c]), hi = std::max(hi, tile64[i * row + c]);
          }
        } else {
          for (int64_t i = 0; i < mr; ++i) {
            const int32_t v = tile32[i * row + c];
            dst[i] = static_cast<int64_t>(v) + add;
            lo = std::min<int64_t>(lo, v), hi = std::max<int64_t>(hi, v);
          }
        }
        mm.acc_min = std::min(mm.acc_min, lo + add), mm.acc_max = std::max(mm.acc_max, hi + add);
      }
    }
    // The fused requant over the task's pixel range, channel by channel (contiguous runs).
    for (int64_t ol = sb * NV * 16; tile_requant8 == nullptr && ol < std::min(L.Og, (sb * NV + nv) * 16); ++ol) {
      if (out.acc_out != nullptr)
        finish_run(out, n, g * L.Og + ol, p_begin, span, mm);
      else
        finish_run(out, n, g * L.Og + ol, p_begin, span, mm, local.data() + (ol - sb * NV * 16) * span);
    }
    totals.local().merge(mm);
  });
  const MinMax total = merged(totals);
  PathCounters& pc = path_counters();
  pc.add(kernel.path);
  pc.add(chunked ? Path::gemm_acc32_chunked : Path::gemm_acc32);
  if (tile_requant8 != nullptr) pc.add(Path::gemm_requant8_avx512);
  return total;
}

}  // namespace qv::integer
