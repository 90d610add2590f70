#include "integer/conv_rows.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

#include "integer/amx_tiles.h"
#include "integer/gemm_kernel.h"
#include "integer/per_thread.h"
#include "integer/requant16_avx512.h"
#include "integer/requant8_avx512.h"
#include "integer/tensor_alloc.h"

#define QV_TARGET_AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq")))

namespace qv::integer {

namespace {

constexpr int64_t kBlock = 32;  // pixels and channels per block: 2 x 2 tiles of 16 x 16
// The longest reduction whose next block's weights are prefetched into L1: two panels of 256 granule
// rows are 32 KiB of Zen 5's 48. Longer ones (VGG16's 3x3 convs over 128 channels and more) run many
// tasks per block, which re-read the block's weights from L2; prefetching them into L1 at the last
// task measured 1% slower on VGG16.
constexpr int64_t kPrefetchMaxGranules = 256;

// The packed-row geometry of a layer. A padded row is stored in stride_w phases, phase p holding
// columns p, p + s, p + 2s, ...: tap kx of output x then reads phase (kx*dilation_w) % s at
// x + (kx*dilation_w) / s, so the 16 pixels of a B tile are consecutive granules for every stride.
struct Rows {
  bool flat;          // 1x1, stride 1, no padding: one row of H*W pixels per image
  int64_t rows;       // packed rows per (n, g): PH, or 1
  int64_t out_rows;   // output rows: OH, or 1
  int64_t out_len;    // output pixels per output row: OW, or OH*OW
  int64_t width;      // columns with data or padding: PW, or H*W
  int64_t phases;     // stride_w (1 when flat)
  int64_t pwp;        // packed columns per phase: out_len rounded up to 16, plus the kernel's reach
};

Rows rows_of(const GemmLayer& L) {
  Rows r{};
  r.flat = L.KH == 1 && L.KW == 1 && L.stride_h == 1 && L.stride_w == 1 && L.PH == L.H && L.PW == L.W;
  r.rows = r.flat ? 1 : L.PH;
  r.out_rows = r.flat ? 1 : L.OH;
  r.out_len = r.flat ? L.OH * L.OW : L.OW;
  r.width = r.flat ? L.H * L.W : L.PW;
  r.phases = r.flat ? 1 : L.stride_w;
  r.pwp = std::max((r.width + r.phases - 1) / r.phases, (r.out_len + 15) / 16 * 16 + (L.KW - 1) * L.dilation_w / r.phases + 1);
  return r;
}

// Column x of a strided row (at stride 1, zero past its data) goes to phase x % s at x / s: phase ph
// of `row` is written at phase0 + ph*phase_stride, pwp granules. Sixteen granules of a phase at a time,
// gathered from the 16*s source granules by one vpermt2d (two when s > 2: sources past the first 32).
// `row` holds (pwp rounded up to 16) * s granules.
__attribute__((target("avx512f"))) void split_phases(const uint32_t* row, int64_t s, int64_t pwp, uint32_t* phase0, int64_t phase_stride) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t ph = 0; ph < s; ++ph) {
    const __m512i index = _mm512_add_epi32(_mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<int32_t>(s))), _mm512_set1_epi32(static_cast<int32_t>(ph)));
    const __mmask16 high = _mm512_cmpge_epi32_mask(index, _mm512_set1_epi32(32));  // lanes from source granules 32..63
    uint32_t* phase = phase0 + ph * phase_stride;
    for (int64_t j = 0; j < pwp; j += 16) {
      const uint32_t* src = row + j * s;
      __m512i v = _mm512_permutex2var_epi32(_mm512_loadu_si512(src), index, _mm512_loadu_si512(src + 16));
      if (s > 2) {
        // The index's low five bits select within source granules 32..63 as within 0..31.
        const __m512i last = s > 3 ? _mm512_loadu_si512(src + 48) : _mm512_setzero_si512();
        v = _mm512_mask_blend_epi32(high, v, _mm512_permutex2var_epi32(_mm512_loadu_si512(src + 32), index, last));
      }
      const __mmask16 live = static_cast<__mmask16>(pwp - j >= 16 ? 0xFFFFu : (1u << (pwp - j)) - 1);
      _mm512_mask_storeu_epi32(phase + j, live, v);
    }
  }
}

// Byte lane j of the first step's permutes: (j/2) of the first source, (j/2) of the second (+ 64).
struct InterleaveIndex {
  alignas(64) uint8_t bytes[2][64];    // [half]: pixels 32*half + j/2 of a (even j) and b (odd j)
  alignas(64) uint16_t words[2][32];   // [quarter]: pixel pairs 16*quarter + k/2 of ab (even k) and cd (odd k)
};
constexpr InterleaveIndex make_interleave_index() {
  InterleaveIndex t{};
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 64; ++j) t.bytes[h][j] = static_cast<uint8_t>(32 * h + j / 2 + (j % 2) * 64);
  for (int q = 0; q < 2; ++q)
    for (int k = 0; k < 32; ++k) t.words[q][k] = static_cast<uint16_t>(16 * q + k / 2 + (k % 2) * 32);
  return t;
}
constexpr InterleaveIndex kInterleave = make_interleave_index();

// How far ahead interleave4_bytes_vbmi prefetches its four rows, in bytes.
constexpr int64_t kPackAhead = 1024;

// Four channel rows (s[l] + i0 .., each value minus `offset` modulo 256) interleaved into granules
// (a_i, b_i, c_i, d_i) at dst, 64 pixels per step: vpermt2b pairs a with b and c with d (32 pixels
// each), vpermt2w pairs those words into 16 granules. Returns the pixels done, a multiple of 64 <= n.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) int64_t interleave4_bytes_vbmi(const uint8_t* const (&s)[4], int64_t i0, int64_t n,
                                                                                    uint8_t offset, uint32_t* dst) {
  const __m512i off = _mm512_set1_epi8(static_cast<char>(offset));
  const __m512i b0 = _mm512_load_si512(kInterleave.bytes[0]), b1 = _mm512_load_si512(kInterleave.bytes[1]);
  const __m512i w0 = _mm512_load_si512(kInterleave.words[0]), w1 = _mm512_load_si512(kInterleave.words[1]);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int l = 0; l < 4; ++l) _mm_prefetch(reinterpret_cast<const char*>(s[l] + i0 + i + kPackAhead), _MM_HINT_T0);
    const __m512i a = _mm512_sub_epi8(_mm512_loadu_si512(s[0] + i0 + i), off), b = _mm512_sub_epi8(_mm512_loadu_si512(s[1] + i0 + i), off);
    const __m512i c = _mm512_sub_epi8(_mm512_loadu_si512(s[2] + i0 + i), off), d = _mm512_sub_epi8(_mm512_loadu_si512(s[3] + i0 + i), off);
    const __m512i ab_lo = _mm512_permutex2var_epi8(a, b0, b), ab_hi = _mm512_permutex2var_epi8(a, b1, b);
    const __m512i cd_lo = _mm512_permutex2var_epi8(c, b0, d), cd_hi = _mm512_permutex2var_epi8(c, b1, d);
    __m512i* o = reinterpret_cast<__m512i*>(dst + i);
    _mm512_storeu_si512(o, _mm512_permutex2var_epi16(ab_lo, w0, cd_lo));
    _mm512_storeu_si512(o + 1, _mm512_permutex2var_epi16(ab_lo, w1, cd_lo));
    _mm512_storeu_si512(o + 2, _mm512_permutex2var_epi16(ab_hi, w0, cd_hi));
    _mm512_storeu_si512(o + 3, _mm512_permutex2var_epi16(ab_hi, w1, cd_hi));
  }
  return i;
}

// Granule planes [N][G][rows][cq][pwp]: value - act_offset per lane (mod 256: the planner proved it lies
// in [0, 255]), pad_value - act_offset in the padding, 0 in columns past `width`. Lanes past Cg repeat
// the group's last channel: their weights are zero, so they add nothing (and the sums stay within the
// planner's bound). A strided row is built at stride 1 first, then split into its phases.
// A packer of granule rows [t0, t1) of that layout into `image`; pack_rows shares them out on the pool,
// the replicated path (run_conv_rows) has each thread pack all of them into its own image.
template <class T>
void pack_granule_rows(const GemmLayer& L, const Rows& R, const T* data, uint32_t* image, const std::vector<uint32_t>& pad, bool vbmi,
                       std::atomic<bool>& any_vbmi, int64_t t0, int64_t t1) {
  const int64_t plane = L.H * L.W;
  for (int64_t task_q = t0; task_q < t1; ++task_q) {
    const int64_t q = task_q % L.cq, task = task_q / L.cq;
    const int64_t r = task % R.rows, ng = task / R.rows, g = ng % L.G, n = ng / L.G;
    const int64_t iy = R.flat ? 0 : r - L.pad_top;
    const bool data_row = R.flat || (iy >= 0 && iy < L.H);
    // Columns [x_lo, x_hi) hold data; column x reads plane offset src0 + (x - x_lo).
    const int64_t x_lo = R.flat ? 0 : L.pad_left, x_hi = R.flat ? plane : L.pad_left + L.W;
    const int64_t src0 = R.flat ? 0 : iy * L.W;
    // Granule row q of a strided row at stride 1: [width], then zeros through the last column the
    // phase split reads (split_phases).
    thread_local std::vector<uint32_t> strided;
    const size_t strided_size = static_cast<size_t>((R.pwp + 15) / 16 * 16 * R.phases);
    if (R.phases > 1 && strided.size() < strided_size) strided.resize(strided_size);
    const uint32_t p = pad[static_cast<size_t>(q)];
    const int64_t c0 = q * 4, lanes = std::min<int64_t>(4, L.Cg - c0);
    const T* s[4];
    for (int64_t l = 0; l < 4; ++l) s[l] = data + (n * L.C + g * L.Cg + c0 + std::min(l, lanes - 1)) * plane + src0;
    uint32_t* dst = R.phases > 1 ? strided.data() : image + (task * L.cq + q) * R.pwp;
    if (!data_row) {
      std::fill(dst, dst + R.width, p);
    } else {
      std::fill(dst, dst + x_lo, p);
      std::fill(dst + x_hi, dst + R.width, p);
    }
    if (R.phases == 1) std::fill(dst + R.width, dst + R.pwp, 0u);
    int64_t x = data_row ? x_lo : x_hi;
    if constexpr (sizeof(T) == 1) {
      if (vbmi && x + 64 <= x_hi) {
        const uint8_t* const rows[4] = {reinterpret_cast<const uint8_t*>(s[0]), reinterpret_cast<const uint8_t*>(s[1]),
                                        reinterpret_cast<const uint8_t*>(s[2]), reinterpret_cast<const uint8_t*>(s[3])};
        x += interleave4_bytes_vbmi(rows, x - x_lo, x_hi - x, static_cast<uint8_t>(L.act_offset), dst + x);
        mark_taken(any_vbmi);
      }
      // 16 pixels of four channel rows interleaved in registers into 16 contiguous granules.
      const __m128i off = _mm_set1_epi8(static_cast<char>(static_cast<uint8_t>(L.act_offset)));
      for (; x + 16 <= x_hi; x += 16) {
        const int64_t i = x - x_lo;
        const __m128i a = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s[0] + i)), off);
        const __m128i b = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s[1] + i)), off);
        const __m128i c = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s[2] + i)), off);
        const __m128i d = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s[3] + i)), off);
        const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
        const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
        __m128i* o = reinterpret_cast<__m128i*>(dst + x);
        _mm_storeu_si128(o, _mm_unpacklo_epi16(ab_lo, cd_lo));
        _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab_lo, cd_lo));
        _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab_hi, cd_hi));
        _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab_hi, cd_hi));
      }
    }
    for (; x < x_hi; ++x) {
      const int64_t i = x - x_lo;
      uint32_t gr = 0;
      for (int64_t l = 0; l < 4; ++l)
        gr |= static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int64_t>(s[l][i]) - L.act_offset)) << (8 * l);
      dst[x] = gr;
    }
    if (R.phases == 1) continue;
    std::fill(strided.begin() + R.width, strided.begin() + static_cast<std::ptrdiff_t>(strided_size), 0u);
    split_phases(strided.data(), R.phases, R.pwp, image + (task * R.phases * L.cq + q) * R.pwp, L.cq * R.pwp);
  }
}

template <class T>
void pack_rows(const GemmLayer& L, const Rows& R, const T* data, int64_t N, uint32_t* image, ThreadPool& pool) {
  const std::vector<uint32_t>& pad = L.pad_rows;
  const bool vbmi = cpu_has_avx512vbmi();  // (the rows driver runs on AVX-512 tiers only)
  std::atomic<bool> any_vbmi{false};
  // A task: `per_task` consecutive granule rows (q of one packed row, then the next row's): a flat 1x1
  // layer is one packed row, whose cq rows still share out, and no task is so small that handing it out
  // (an atomic shared by the threads) costs more than the copy.
  const int64_t granule_rows = N * L.G * R.rows * L.cq;
  const int64_t per_task = pool.items_per_task(granule_rows, R.width);
  pool.run((granule_rows + per_task - 1) / per_task, [&](int64_t chunk) {
    pack_granule_rows(L, R, data, image, pad, vbmi, any_vbmi, chunk * per_task, std::min(granule_rows, (chunk + 1) * per_task));
  });
  if (any_vbmi.load()) path_counters().add(Path::pack_rows_vbmi);
}

struct BlockArgs {
  const uint32_t* weight;  // AMX: the first A tile of channels o0..o0+15 (o0+16.. is 16*kg granules on);
                           // VNNI: the panel of channels o0..o0+15 (o0+16.. likewise)
  const uint32_t* pixels;  // B: packed row of tap (0, 0), granule 0, column of the block's first pixel
  int64_t kg, cq, pwp, ks, KH, KW;
  const int64_t* tap;      // [KH*KW]: granules from `pixels` to each tap's first granule row
  int32_t* out;            // [32 channels][32 pixels]
  // VNNI: the next channel block's two weight panels (kg lines each; the same panel twice when it has
  // one), loaded into L1 during the first group's reduction, line k at granule step k. nullptr: none.
  const char* prefetch[2];
};

// C[channel][pixel] += A[channel][k] (s8) * B[k][pixel] (u8) over every tap and granule step: tdpbsud.
template <int NA, int NB>
QV_TARGET_AMX void block(const BlockArgs& a) {
  _tile_zero(0);
  if constexpr (NB == 2) _tile_zero(1);
  if constexpr (NA == 2) _tile_zero(2);
  if constexpr (NA == 2 && NB == 2) _tile_zero(3);
  const int64_t a_stride = a.ks * 4, b_stride = a.pwp * 4;
  const uint32_t* w = a.weight;  // K steps in order: (ky, kx, c)
  for (int64_t ky = 0; ky < a.KH; ++ky)
    for (int64_t kx = 0; kx < a.KW; ++kx) {
      const uint32_t* x = a.pixels + a.tap[ky * a.KW + kx];
      for (int64_t c = 0; c < a.cq; c += a.ks, w += 16 * a.ks) {
        _tile_loadd(4, w, a_stride);
        if constexpr (NA == 2) _tile_loadd(5, w + 16 * a.kg, a_stride);
        _tile_loadd(6, x + c * a.pwp, b_stride);
        if constexpr (NB == 2) _tile_loadd(7, x + c * a.pwp + 16, b_stride);
        _tile_dpbsud(0, 4, 6);
        if constexpr (NB == 2) _tile_dpbsud(1, 4, 7);
        if constexpr (NA == 2) _tile_dpbsud(2, 5, 6);
        if constexpr (NA == 2 && NB == 2) _tile_dpbsud(3, 5, 7);
      }
    }
  constexpr int64_t row_bytes = kBlock * 4;
  _tile_stored(0, a.out, row_bytes);
  if constexpr (NB == 2) _tile_stored(1, a.out + 16, row_bytes);
  if constexpr (NA == 2) _tile_stored(2, a.out + 16 * kBlock, row_bytes);
  if constexpr (NA == 2 && NB == 2) _tile_stored(3, a.out + 16 * kBlock + 16, row_bytes);
}

// The same block on vpdpbusd (avx512vnni tier): 16 pixels' granules of one granule row (u8, the
// unsigned operand) against one channel's weight granule broadcast to every lane (s8). The weights are
// the micro-kernels' panels ([kg][16] granules per block of 16 channels: `weight` points at the block's
// first, the second block follows at 16*kg), so the broadcasts of one granule step share one pointer.
// A group of channels keeps 16 accumulators (8 channels x 2 pixel vectors, or 16 x 1), so each pixel
// load serves the whole group; the groups then run over the block's 16*NA channels (channels past Og
// have zero weights). Every int32 a lane holds is a partial sum of one output's reduction, inside the
// planner's bound, so the wrapping additions are exact as on the tiles.
//
// group_sums_vnni: one group's sums, kGroup channels from c0 (in 0..31) x NB vectors of 16 pixels.
template <int kGroup, int NB, bool kPrefetch = false>
__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline)) inline void group_sums_vnni(const BlockArgs& a, int64_t c0,
                                                                                                 __m512i (&acc)[kGroup][NB]) {
  const int64_t taps = a.KH * a.KW;
  const uint32_t* w = a.weight + (c0 / 16) * 16 * a.kg + c0 % 16;  // granule k of channel c0 + j: w[16*k + j]
  for (int j = 0; j < kGroup; ++j)
    for (int v = 0; v < NB; ++v) acc[j][v] = _mm512_setzero_si512();
  const char *next0 = a.prefetch[0], *next1 = a.prefetch[1];
  for (int64_t t = 0; t < taps; ++t) {
    const uint32_t* x = a.pixels + a.tap[t];
    for (int64_t c = 0; c < a.cq; ++c, w += 16) {
      if constexpr (kPrefetch) {
        _mm_prefetch(next0, _MM_HINT_T0), _mm_prefetch(next1, _MM_HINT_T0);
        next0 += 64, next1 += 64;
      }
      __m512i p[NB];
      for (int v = 0; v < NB; ++v) p[v] = _mm512_loadu_si512(x + c * a.pwp + 16 * v);
      for (int j = 0; j < kGroup; ++j) {
        const __m512i wj = _mm512_set1_epi32(static_cast<int32_t>(w[j]));
        for (int v = 0; v < NB; ++v) acc[j][v] = _mm512_dpbusd_epi32(acc[j][v], p[v], wj);
      }
    }
  }
}

template <int NA, int NB>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void block_vnni(const BlockArgs& a) {
  constexpr int kGroup = NB == 2 ? 8 : 16;
  for (int64_t c0 = 0; c0 < 16 * NA; c0 += kGroup) {
    __m512i acc[kGroup][NB];
    if (c0 == 0 && a.prefetch[0] != nullptr) group_sums_vnni<kGroup, NB, true>(a, c0, acc);
    else group_sums_vnni<kGroup, NB>(a, c0, acc);
    for (int j = 0; j < kGroup; ++j)
      for (int v = 0; v < NB; ++v) _mm512_storeu_si512(a.out + (c0 + j) * kBlock + 16 * v, acc[j][v]);
  }
}

// Output only, every channel of the block on the 16-lane route: the group's sums are requantized in
// registers into the NCHW bytes (channel c0 + j at dst + (c0 + j) * dst_stride), with no int32 block
// in memory in between.
struct FusedBlockOut {
  const HighMulChannel* hm;  // [channels]: the block's channels, every one ok
  int64_t channels, count;   // channels of the block (<= 16*NA), pixels (<= 16*NB)
  int32_t lo, hi;
  uint8_t* dst;
  int64_t dst_stride;
};

// kPack (untracked ranges, whole vectors only): four vectors at a time narrowed by pack4_bytes, two
// channels' 32 pixels (NB = 2) or four channels' 16 (NB = 1); the channels left over one by one.
template <int NA, int NB, bool kTrack, BytePack kPack = BytePack::none>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void block_vnni_requant(const BlockArgs& a, const FusedBlockOut& f, Ranges32& r) {
  static_assert(kPack == BytePack::none || !kTrack);
  constexpr int kGroup = NB == 2 ? 8 : 16;
  constexpr int kPerPack = 4 / NB;  // channels per 4 vectors
  const __mmask16 first = static_cast<__mmask16>(f.count >= 16 ? 0xFFFFu : (1u << f.count) - 1);
  const __mmask16 second = static_cast<__mmask16>(f.count >= 32 ? 0xFFFFu : f.count > 16 ? (1u << (f.count - 16)) - 1 : 0u);
  const bool packed = kPack != BytePack::none && f.count == 16 * NB;
  Ranges32 local = r;  // in registers (the byte stores may alias r)
  // Likewise what is read from `f`: the byte stores may alias it.
  uint8_t* const dst = f.dst;
  const int64_t stride = f.dst_stride;
  const HighMulChannel* const hm = f.hm;
  const int32_t lo = f.lo, hi = f.hi;
  for (int64_t c0 = 0; c0 < std::min<int64_t>(16 * NA, f.channels); c0 += kGroup) {
    __m512i acc[kGroup][NB];
    if (c0 == 0 && a.prefetch[0] != nullptr) group_sums_vnni<kGroup, NB, true>(a, c0, acc);
    else group_sums_vnni<kGroup, NB>(a, c0, acc);
    const int64_t live = f.channels - c0;  // the group's channels that exist
    // Both loops below run a fixed number of times, fully unrolled, with the channel bound as a test
    // inside: indexed by a loop counter the compiler cannot unroll, `acc` lived on the stack, stored
    // after the sums and loaded back by the requant (two memory operations per vector of 16 outputs).
    int done = 0;  // the channels the packs requantized
    if constexpr (kPack != BytePack::none) {
      if (packed) {
        const ByteClamp k = byte_clamp(lo, hi);
#pragma GCC unroll 16
        for (int j = 0; j < kGroup; j += kPerPack) {
          if (j + kPerPack > live) break;
          __m512i y[4];
#pragma GCC unroll 4
          for (int q = 0; q < kPerPack; ++q) {
            const HighMulChannel& h = hm[c0 + j + q];
            const HighMul16 v = high_mul16(h, lo, hi);
            const Form16 form = form16(h);
            for (int b = 0; b < NB; ++b) y[q * NB + b] = requant_high_mul16_unclamped(acc[j + q][b], v, form);
          }
          const __m512i bytes = pack4_bytes<kPack>(y[0], y[1], y[2], y[3], k);
          uint8_t* d = dst + (c0 + j) * stride;
          // Each channel's run of the 64 bytes to its row by a plain 32- or 16-byte store (the extracts
          // in maskz form for GCC 12, as above). Masked byte stores of the whole vector, one per channel,
          // measured 1-3% slower on MobileNetV2 (Zen 5, alternating blocks in one process).
          if constexpr (NB == 2) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm512_maskz_extracti64x4_epi64(0xF, bytes, 0));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + stride), _mm512_maskz_extracti64x4_epi64(0xF, bytes, 1));
          } else {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm512_maskz_extracti32x4_epi32(0xF, bytes, 0));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d + stride), _mm512_maskz_extracti32x4_epi32(0xF, bytes, 1));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * stride), _mm512_maskz_extracti32x4_epi32(0xF, bytes, 2));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 3 * stride), _mm512_maskz_extracti32x4_epi32(0xF, bytes, 3));
          }
          done = j + kPerPack;
        }
      }
    }
#pragma GCC unroll 16
    for (int j = 0; j < kGroup; ++j) {
      if (j < done || j >= live) continue;
      const HighMulChannel& h = hm[c0 + j];
      const HighMul16 v = high_mul16(h, lo, hi);
      const Form16 form = form16(h);
      uint8_t* d = dst + (c0 + j) * stride;
      requant_high_mul16_step<kTrack>(acc[j][0], first, v, form, d, local);
      if (NB == 2 && second != 0) requant_high_mul16_step<kTrack>(acc[j][NB - 1], second, v, form, d + 16, local);
    }
  }
  r = local;
}

// The pixels of a block past its last whole vector of 16 (count % 16 of them), on vpdpbusd the other way
// round: each pixel's granule broadcast against the weight panels, 16 channels per lane vector, so a
// pixel costs 1/16 of a pixel vector (a 7x7 plane is 3 vectors and 1 pixel, not 4 vectors; a row of
// 56 outputs is 3 vectors and 8 pixels). The sums go into the block's [channel][pixel] tile at columns
// x_first.., read by the output stage like the pixel vectors' sums.
template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline)) inline void tail_sums(const BlockArgs& a, int64_t x_first,
                                                                                         __m512i (&acc)[MR][NV]) {
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_si512();
  const int64_t taps = a.KH * a.KW;
  const uint32_t* w = a.weight;  // granule k of block j's 16 channels: w[16*(j*kg + k) ..]
  for (int64_t t = 0; t < taps; ++t) {
    const uint32_t* x = a.pixels + a.tap[t] + x_first;
    for (int64_t c = 0; c < a.cq; ++c, w += 16) {
      __m512i wv[NV];
      for (int j = 0; j < NV; ++j) wv[j] = _mm512_loadu_si512(w + j * 16 * a.kg);
      for (int i = 0; i < MR; ++i) {
        const __m512i p = _mm512_set1_epi32(static_cast<int32_t>(x[c * a.pwp + i]));
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], p, wv[j]);
      }
    }
  }
}

template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tail_pixels_vnni(const BlockArgs& a, int64_t x_first, int64_t channels) {
  __m512i acc[MR][NV];
  tail_sums<MR, NV>(a, x_first, acc);
  // Lane l of acc[i][j] is channel 16j + l of pixel x_first + i: row 16j + l of the tile.
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(kBlock));
  for (int j = 0; j < NV; ++j) {
    const __mmask16 live = static_cast<__mmask16>(channels - 16 * j >= 16 ? 0xFFFFu : (1u << (channels - 16 * j)) - 1);
    for (int i = 0; i < MR; ++i) _mm512_mask_i32scatter_epi32(a.out + 16 * j * kBlock + x_first + i, live, rows, acc[i][j], 4);
  }
}

// Calls kernel(i, MR, NV) for the runs [i, i + MR) of at most 8 of n tail pixels, MR and NV as
// std::integral_constant (NV: channel vectors, 2 when the block has more than 16 channels), so that a
// run's 8 x 2 accumulators and 2 weight vectors stay in registers.
template <class Kernel>
void for_tail_runs(int64_t n, int64_t channels, Kernel kernel) {
  auto with_nv = [&](int64_t i, auto MR) {
    if (channels > 16) kernel(i, MR, std::integral_constant<int, 2>{});
    else kernel(i, MR, std::integral_constant<int, 1>{});
  };
  for (int64_t i = 0; i < n; i += 8) {
    switch (std::min<int64_t>(8, n - i)) {
      case 1: with_nv(i, std::integral_constant<int, 1>{}); break;
      case 2: with_nv(i, std::integral_constant<int, 2>{}); break;
      case 3: with_nv(i, std::integral_constant<int, 3>{}); break;
      case 4: with_nv(i, std::integral_constant<int, 4>{}); break;
      case 5: with_nv(i, std::integral_constant<int, 5>{}); break;
      case 6: with_nv(i, std::integral_constant<int, 6>{}); break;
      case 7: with_nv(i, std::integral_constant<int, 7>{}); break;
      default: with_nv(i, std::integral_constant<int, 8>{}); break;
    }
  }
}

// The same sums requantized in registers, for a block whose every channel has the fma form and whose
// ranges the plan proved (nothing to track): lane l of acc[i][j] is channel 16j + l, so the requant
// runs across channels, with the channels' f and b as lane vectors, and each output byte goes to its
// channel's row (dst: the block's first channel at pixel x_first). The tile and the per-channel
// requant of a few columns (a 7x7 plane's one pixel past its three vectors, for each of 32 channels)
// cost more than the pixel's sums.
template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tail_pixels_fma(const BlockArgs& a, int64_t x_first, int64_t channels,
                                                                            const HighMulChannel* hm, int32_t lo, int32_t hi, uint8_t* dst,
                                                                            int64_t dst_stride) {
  __m512i acc[MR][NV];
  tail_sums<MR, NV>(a, x_first, acc);
  HighMul16 h{};  // the fma form's operands only, one channel per lane
  h.lo = _mm512_set1_epi32(lo), h.hi = _mm512_set1_epi32(hi);
  Ranges32 untracked{};  // (kTrack false: never read)
  for (int j = 0; j < NV; ++j) {
    const int64_t live = std::min<int64_t>(16, channels - 16 * j);
    alignas(64) float f[16] = {}, b[16] = {};
    for (int64_t l = 0; l < live; ++l) f[l] = hm[16 * j + l].fma_f, b[l] = hm[16 * j + l].fma_b;
    h.f = _mm512_load_ps(f), h.b = _mm512_load_ps(b);
    for (int i = 0; i < MR; ++i) {
      const __m512i y = requant_high_mul16_value<Form16::fma, false>(acc[i][j], 0xFFFF, h, untracked);
      alignas(16) uint8_t bytes[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(bytes), _mm512_maskz_cvtepi32_epi8(0xFFFF, y));
      for (int64_t l = 0; l < live; ++l) dst[(16 * j + l) * dst_stride + i] = bytes[l];
    }
  }
}

// Columns [x_first, x_first + n) of the block into its output bytes (dst: pixel x_first of the block's
// first channel).
void tail_pixels_requant_fma(const BlockArgs& a, int64_t x_first, int64_t n, int64_t channels, const HighMulChannel* hm, int32_t lo, int32_t hi,
                             uint8_t* dst, int64_t dst_stride) {
  for_tail_runs(n, channels, [&](int64_t i, auto MR, auto NV) {
    tail_pixels_fma<MR.value, NV.value>(a, x_first + i, channels, hm, lo, hi, dst + i, dst_stride);
  });
}

// Tile columns [x_first, x_first + n) of the block's `channels` (<= 32), n < 16.
void tail_pixels(const BlockArgs& a, int64_t x_first, int64_t n, int64_t channels) {
  for_tail_runs(n, channels, [&](int64_t i, auto MR, auto NV) { tail_pixels_vnni<MR.value, NV.value>(a, x_first + i, channels); });
}

using BlockFn = void (*)(const BlockArgs&);
constexpr BlockFn kBlocks[2][2] = {{block<1, 1>, block<1, 2>}, {block<2, 1>, block<2, 2>}};
constexpr BlockFn kBlocksVnni[2][2] = {{block_vnni<1, 1>, block_vnni<1, 2>}, {block_vnni<2, 1>, block_vnni<2, 2>}};
using FusedBlockFn = void (*)(const BlockArgs&, const FusedBlockOut&, Ranges32&);
// [ranges tracked][NA - 1][NB - 1] and, untracked, [byte pack][NA - 1][NB - 1]
constexpr FusedBlockFn kBlocksVnniRequant[2][2][2] = {
    {{block_vnni_requant<1, 1, false>, block_vnni_requant<1, 2, false>}, {block_vnni_requant<2, 1, false>, block_vnni_requant<2, 2, false>}},
    {{block_vnni_requant<1, 1, true>, block_vnni_requant<1, 2, true>}, {block_vnni_requant<2, 1, true>, block_vnni_requant<2, 2, true>}}};
template <BytePack P>
constexpr FusedBlockFn kPackedBlocks[2][2] = {{block_vnni_requant<1, 1, false, P>, block_vnni_requant<1, 2, false, P>},
                                              {block_vnni_requant<2, 1, false, P>, block_vnni_requant<2, 2, false, P>}};
FusedBlockFn fused_block_fn(bool track, BytePack pack, bool two_blocks, bool two_vectors) {
  if (!track && pack == BytePack::unsigned_bytes) return kPackedBlocks<BytePack::unsigned_bytes>[two_blocks][two_vectors];
  if (!track && pack == BytePack::signed_bytes) return kPackedBlocks<BytePack::signed_bytes>[two_blocks][two_vectors];
  return kBlocksVnniRequant[track][two_blocks][two_vectors];
}

// Output only: each channel's contiguous run of `count` sums, plus its add, requantized into bytes (the
// int64 shift route, 8 lanes at a time) with accumulator and output ranges tracked in vectors.
struct RangeVectors {
  __m512i alo, ahi, ylo, yhi;
};

template <Rounding R>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw"))) void requant_block8(const int32_t* tile, int64_t count, int64_t channels,
                                                                                 const int64_t* add, const Requant8& rq, uint8_t* dst,
                                                                                 int64_t dst_stride, RangeVectors& rv) {
  const __m512i vlo = _mm512_set1_epi64(rq.lo), vhi = _mm512_set1_epi64(rq.hi);
  RangeVectors local = rv;  // in registers: the byte stores may alias `rv` as far as the compiler knows
  for (int64_t c = 0; c < channels; ++c) {
    const __m512i vadd = _mm512_set1_epi64(add[c]);
    for (int64_t i = 0; i < count; i += 8) {
      const __mmask8 mask = static_cast<__mmask8>(count - i >= 8 ? 0xFF : (1u << (count - i)) - 1);
      const __m512i acc = _mm512_add_epi64(_mm512_maskz_cvtepi32_epi64(0xFF, _mm256_maskz_loadu_epi32(mask, tile + c * kBlock + i)), vadd);
      local.alo = _mm512_mask_min_epi64(local.alo, mask, local.alo, acc), local.ahi = _mm512_mask_max_epi64(local.ahi, mask, local.ahi, acc);
      const __m512i y = requant_shift8<R>(acc, rq.params[c], vlo, vhi);
      local.ylo = _mm512_mask_min_epi64(local.ylo, mask, local.ylo, y), local.yhi = _mm512_mask_max_epi64(local.yhi, mask, local.yhi, y);
      _mm512_mask_cvtepi64_storeu_epi8(dst + c * dst_stride + i, mask, y);
    }
  }
  rv = local;
}

using RequantBlock8 = void (*)(const int32_t*, int64_t, int64_t, const int64_t*, const Requant8&, uint8_t*, int64_t, RangeVectors&);

// A block's channels, each on the 16-lane route when it has one, else on the 8-lane int64 route when it
// has a shift route, else through FusedRequant::apply_narrow (the channel's own exact route) on int64
// sums, applied only when they lie in the accumulator's declared type (as finish_run).
struct MixedArgs {
  const HighMulChannel* hm;     // [channels] or nullptr
  const char* has_shift;        // [channels]
  RequantBlock8 requant8;
  const int64_t* add;           // [channels]
  Requant8 rq;
  const OutputStage* out;
  int64_t o0;                   // the block's first output channel
};

__attribute__((target("avx512f,avx512bw"))) void requant_block_mixed(const int32_t* tile, int64_t count, int64_t channels, const MixedArgs& m,
                                                                     uint8_t* dst, int64_t dst_stride, RangeVectors& rv, Ranges32& r32,
                                                                     MinMax& mm) {
  const int32_t lo = static_cast<int32_t>(m.rq.lo), hi = static_cast<int32_t>(m.rq.hi);
  Ranges32 local = r32;  // in registers across the channels (the byte stores may alias r32)
  for (int64_t c = 0; c < channels; ++c) {
    if (m.hm != nullptr && m.hm[c].ok) {
      requant_high_mul16(tile + c * kBlock, count, m.hm[c], lo, hi, dst + c * dst_stride, local, !m.out->ranges_proven);
    } else if (m.has_shift[c]) {
      m.requant8(tile + c * kBlock, count, 1, m.add + c, Requant8{m.rq.params + c, m.rq.lo, m.rq.hi}, dst + c * dst_stride, dst_stride, rv);
    } else {
      int64_t acc[kBlock];
      int64_t a_lo = INT64_MAX, a_hi = INT64_MIN;
      for (int64_t i = 0; i < count; ++i) {
        acc[i] = static_cast<int64_t>(tile[c * kBlock + i]) + m.add[c];
        a_lo = std::min(a_lo, acc[i]), a_hi = std::max(a_hi, acc[i]);
      }
      mm.acc_min = std::min(mm.acc_min, a_lo), mm.acc_max = std::max(mm.acc_max, a_hi);
      if (a_lo >= m.out->acc_lo && a_hi <= m.out->acc_hi)
        m.out->requant->apply_narrow(static_cast<size_t>(m.o0 + c), acc, dst + c * dst_stride, count, mm.y_min, mm.y_max);
    }
  }
  r32 = local;
}

RequantBlock8 requant_block8_for(Rounding r) {
  return with_rounding(r, [](auto R) -> RequantBlock8 { return requant_block8<R.value>; });
}

__attribute__((target("avx512f"))) void init_ranges(RangeVectors& rv) {
  rv.alo = rv.ylo = _mm512_set1_epi64(INT64_MAX);
  rv.ahi = rv.yhi = _mm512_set1_epi64(INT64_MIN);
}


__attribute__((target("avx512f"))) void merge_ranges(const RangeVectors& rv, MinMax& mm) {
  alignas(64) int64_t a0[8], a1[8], y0[8], y1[8];
  _mm512_store_si512(a0, rv.alo), _mm512_store_si512(a1, rv.ahi), _mm512_store_si512(y0, rv.ylo), _mm512_store_si512(y1, rv.yhi);
  for (int j = 0; j < 8; ++j) {
    mm.acc_min = std::min(mm.acc_min, a0[j]), mm.acc_max = std::max(mm.acc_max, a1[j]);
    mm.y_min = std::min(mm.y_min, y0[j]), mm.y_max = std::max(mm.y_max, y1[j]);
  }
}

}  // namespace

bool rows_fits(const GemmLayer& L) {
  return L.granule == 4 && L.chunk >= L.kg && L.stride_w >= 1 && L.stride_w <= 4 && L.OH * L.OW >= 16;
}

namespace {

// AMX, a windowed conv over at most 8 channels (the first conv of an image network): a K step cannot
// cross a tap, so each tdpbsud would reduce only cq (1 or 2) granules of its 16. The packed rows are
// gathered per tap instead (im2col: granule k = tap*cq + q of every output pixel, one flat row), and
// the whole reduction (kg <= 16 granules, in the weights' own order) is one K step.
bool rows_im2col(const GemmLayer& L) { return L.rows == GemmLayer::Rows::amx && !rows_of(L).flat && L.cq <= 2 && L.kg <= 16; }

int amx_step_of(const GemmLayer& L) { return rows_im2col(L) ? amx_step_for(L.kg) : amx_step_for(L.cq); }

MinMax run_rows_blocks(const GemmLayer& L, const Rows& R, const uint32_t* image, int64_t row_pitch, const std::vector<int64_t>& tap,
                       int64_t cq, int64_t taps, int64_t N, const OutputStage& out, ThreadPool& pool,
                       const std::function<const uint32_t*()>* thread_image = nullptr);

}  // namespace

void plan_fused_blocks(GemmLayer& L, const std::vector<HighMulChannel>& high_mul) {
  L.fused_blocks.clear();
  if (L.rows != GemmLayer::Rows::vnni || high_mul.size() != static_cast<size_t>(L.G * L.Og)) return;
  const int64_t super_blocks = (L.Og + kBlock - 1) / kBlock;  // as run_rows_blocks numbers them
  L.fused_blocks.resize(static_cast<size_t>(L.G * super_blocks));
  for (int64_t g = 0; g < L.G; ++g)
    for (int64_t sb = 0; sb < super_blocks; ++sb) {
      const HighMulChannel* h = high_mul.data() + g * L.Og + sb * kBlock;
      const HighMulChannel* end = h + std::min(kBlock, L.Og - sb * kBlock);
      const bool fused = std::all_of(h, end, [](const HighMulChannel& c) { return c.ok; });
      L.fused_blocks[static_cast<size_t>(g * super_blocks + sb)] =
          static_cast<char>(!fused ? 0 : std::all_of(h, end, [](const HighMulChannel& c) { return c.fma; }) ? 2 : 1);
    }
}

void prepare_rows(GemmLayer& L) {
  L.pad_rows.assign(static_cast<size_t>(L.cq), 0);
  for (int64_t c = 0; c < L.Cg; ++c)
    L.pad_rows[static_cast<size_t>(c / 4)] |= static_cast<uint32_t>(static_cast<uint8_t>(L.pad_value - L.act_offset)) << (8 * (c % 4));
  if (L.rows != GemmLayer::Rows::amx) return;  // VNNI reads the panels of `weight`
  const int64_t og = (L.Og + kBlock - 1) / kBlock * kBlock, ks = amx_step_of(L);
  L.weight_rows.assign(static_cast<size_t>(L.G * og * L.kg), 0);
  for (int64_t g = 0; g < L.G; ++g)
    for (int64_t o = 0; o < L.Og; ++o)
      for (int64_t k = 0; k < L.kg; ++k)
        L.weight_rows[static_cast<size_t>(((g * og + o / 16 * 16) * L.kg + k / ks * 16 * ks) + (o % 16) * ks + k % ks)] =
            L.weight[static_cast<size_t>(((g * L.blocks + o / 16) * L.kg + k) * 16 + o % 16)];
}

MinMax run_conv_rows(const GemmLayer& L, const ActSource& input, int64_t N, const OutputStage& out, ThreadPool& pool,
                         Workspace& ws) {
  const Rows R = rows_of(L);
  const int64_t image_size = N * L.G * R.rows * R.phases * L.cq * R.pwp;
  const int64_t row_pitch = R.phases * L.cq * R.pwp;  // granules per packed row
  std::vector<int64_t> tap(static_cast<size_t>(L.KH * L.KW));
  for (int64_t ky = 0; ky < L.KH; ++ky)
    for (int64_t kx = 0; kx < L.KW; ++kx) {
      const int64_t col = kx * L.dilation_w;
      tap[static_cast<size_t>(ky * L.KW + kx)] = ky * L.dilation_h * row_pitch + (col % R.phases) * L.cq * R.pwp + col / R.phases;
    }
  if (pool.threads() > 1 && R.flat) {
    // A flat (1x1) layer on several threads: every thread packs the whole image into its own buffer
    // before its first block, so that no block reads a line the other core packed (a cross-core
    // transfer: a cache-line round trip between this VM's two vCPUs measured 160-600 ns). Twice the
    // packing, but MobileNets' pointwise layers ran 0.64-0.90 of their time on two threads. Not for
    // the windowed layers: VGG16's 3x3 convs, whose images are up to 3 MB, ran 1.03-1.26x slower.
    const int threads = pool.threads();
    if (ws.thread_images.size() < static_cast<size_t>(threads)) ws.thread_images.resize(static_cast<size_t>(threads));
    std::vector<uint32_t*> images(static_cast<size_t>(threads));
    for (int t = 0; t < threads; ++t) images[static_cast<size_t>(t)] = scratch(ws.thread_images[static_cast<size_t>(t)], image_size);
    struct alignas(64) Packed {
      bool done = false;
    };
    std::vector<Packed> packed(static_cast<size_t>(threads));
    const std::vector<uint32_t>& pad = L.pad_rows;
    const bool vbmi = cpu_has_avx512vbmi();
    std::atomic<bool> any_vbmi{false};
    const int64_t granule_rows = N * L.G * R.rows * L.cq;
    const std::function<const uint32_t*()> thread_image = [&]() -> const uint32_t* {
      const size_t t = static_cast<size_t>(ThreadPool::current_thread());
      if (!packed[t].done) {
        input.visit([&](auto data) { pack_granule_rows(L, R, data, images[t], pad, vbmi, any_vbmi, 0, granule_rows); });
        packed[t].done = true;
      }
      return images[t];
    };
    const MinMax mm = run_rows_blocks(L, R, nullptr, row_pitch, tap, L.cq, L.KH * L.KW, N, out, pool, &thread_image);
    if (any_vbmi.load()) path_counters().add(Path::pack_rows_vbmi);
    path_counters().add(Path::pack_rows_per_thread);
    return mm;
  }
  uint32_t* image = scratch(ws.image, image_size);
  input.visit([&](auto data) { pack_rows(L, R, data, N, image, pool); });

  if (rows_im2col(L)) {
    // Granule k = t*cq + q of output pixel p, as one flat row per (n, g): tap t of output row oy is the
    // contiguous run of OW granules at the tap's offset in packed row oy*stride_h.
    Rows T{};
    T.flat = true, T.rows = 1, T.out_rows = 1, T.out_len = L.OH * L.OW, T.width = T.out_len, T.phases = 1;
    T.pwp = (T.out_len + 15) / 16 * 16 + 1;
    uint32_t* taps = scratch(ws.taps, N * L.G * L.kg * T.pwp);
    pool.run(N * L.G * L.kg, [&](int64_t task) {
      const int64_t k = task % L.kg, ng = task / L.kg, t = k / L.cq, q = k % L.cq;
      uint32_t* dst = taps + task * T.pwp;
      const uint32_t* src = image + ng * R.rows * row_pitch + tap[static_cast<size_t>(t)] + q * R.pwp;
      for (int64_t oy = 0; oy < L.OH; ++oy) std::memcpy(dst + oy * L.OW, src + oy * L.stride_h * row_pitch, static_cast<size_t>(L.OW) * 4);
      std::fill(dst + T.out_len, dst + T.pwp, 0u);
    });
    path_counters().add(Path::conv_q8_amx_im2col);
    return run_rows_blocks(L, T, taps, L.kg * T.pwp, std::vector<int64_t>{0}, L.kg, 1, N, out, pool);
  }
  return run_rows_blocks(L, R, image, row_pitch, tap, L.cq, L.KH * L.KW, N, out, pool);
}

namespace {

// The blocks of run_conv_rows over packed rows `image` (geometry R, row_pitch granules per packed row,
// cq granules per tap, `taps` taps at offsets `tap`; the im2col image is one tap of kg granules).
MinMax run_rows_blocks(const GemmLayer& L, const Rows& R, const uint32_t* image, int64_t row_pitch, const std::vector<int64_t>& tap,
                       int64_t cq, int64_t taps, int64_t N, const OutputStage& out, ThreadPool& pool,
                       const std::function<const uint32_t*()>* thread_image) {
  const int ks = amx_step_of(L);
  const bool amx = L.rows == GemmLayer::Rows::amx;
  const int64_t og = (L.Og + kBlock - 1) / kBlock * kBlock, super_blocks = og / kBlock;
  // A task: one output row (or, for the flat 1x1 case, up to 256 pixels of it) x 32 channels; a small
  // flat layer takes shorter segments, down to one block, so that every thread gets several tasks.
  const int64_t flat_tasks = N * L.G * super_blocks;
  const int64_t seg_len = R.flat ? std::clamp<int64_t>((R.out_len * flat_tasks / (4 * pool.threads()) + kBlock - 1) / kBlock * kBlock, kBlock, 256)
                                 : (R.out_len + kBlock - 1) / kBlock * kBlock;
  const int64_t segments = (R.out_len + seg_len - 1) / seg_len;
  const int64_t tasks = N * L.G * super_blocks * R.out_rows * segments;
  // Output only, bytes out: requantize from the tile. Channels on the 16-lane int32 route (decided by
  // the planner), the others on the int64 shift route where they have one, else on their own route
  // (requant_block_mixed).
  const FusedRequant::ShiftParams* shift_params = nullptr;
  const char* has_shift = nullptr;
  RequantBlock8 requant8 = nullptr;
  bool any_shift = false;
  if (out.acc_out == nullptr && out.requant_out == nullptr && out.narrow_out != nullptr && out.requant != nullptr) {
    shift_params = out.requant->shift_table();
    has_shift = out.requant->has_shift();
    any_shift = out.requant->any_shift();
    requant8 = requant_block8_for(out.requant->shift_rounding());
  }
  const HighMulChannel* high_mul = requant8 != nullptr ? out.high_mul : nullptr;
  const BytePack pack = out.requant != nullptr ? byte_pack_for(out.requant->lo(), out.requant->hi()) : BytePack::none;

  // VNNI: the (group, channel block)s whose every channel is on the 16-lane route (the planner's).
  const char* const fused = !amx && high_mul != nullptr && !L.fused_blocks.empty() ? L.fused_blocks.data() : nullptr;

  PerThread<MinMax> totals(pool);
  std::atomic<bool> any_fused{false}, any_tail{false}, any_packed{false}, any_prefetch{false}, any_fma_tail{false};
  pool.run(tasks, [&](int64_t task) {
    const int64_t seg = task % segments;
    int64_t rest = task / segments;
    const int64_t oy = rest % R.out_rows;
    rest /= R.out_rows;
    const int64_t sb = rest % super_blocks;
    rest /= super_blocks;
    const int64_t g = rest % L.G, n = rest / L.G;
    const int64_t x_begin = seg * seg_len, x_end = std::min(R.out_len, x_begin + seg_len);
    const int64_t p_begin = oy * R.out_len + x_begin, span = x_end - x_begin;  // plane positions of the task
    const int64_t channels = std::min(kBlock, L.Og - sb * kBlock);
    const int64_t o0 = g * L.Og + sb * kBlock;
    if (amx) amx_configure(ks);
    alignas(64) int32_t tile[kBlock * kBlock];
    BlockArgs a{};
    a.weight = amx ? L.weight_rows.data() + (g * og + sb * kBlock) * L.kg : L.weight.data() + (g * L.blocks + 2 * sb) * L.kg * 16;
    a.kg = L.kg, a.cq = cq, a.pwp = R.pwp, a.ks = ks, a.KH = taps == 1 ? 1 : L.KH, a.KW = taps == 1 ? 1 : L.KW;
    a.tap = tap.data();
    a.out = tile;
    // VNNI: the last task of a channel block prefetches the next block's weights, which the thread's
    // next task reads (shares are contiguous). A network's weights come from L3 (MobileNetV2's are 3.4 MB),
    // on demand, a line per granule step, so a 7x7 layer's blocks (one task each, 49 pixels) waited on
    // them; the weights of a layer run once per image do not stay in L2.
    const bool last_of_block = seg == segments - 1 && oy == R.out_rows - 1 && sb + 1 < super_blocks;
    if (!amx && last_of_block && L.kg <= kPrefetchMaxGranules) {
      const uint32_t* next = a.weight + 2 * 16 * L.kg;
      a.prefetch[0] = reinterpret_cast<const char*>(next);
      a.prefetch[1] = reinterpret_cast<const char*>(2 * (sb + 1) + 1 < L.blocks ? next + 16 * L.kg : next);
    }
    const uint32_t* row = (thread_image != nullptr ? (*thread_image)() : image) + ((n * L.G + g) * R.rows + oy * L.stride_h) * row_pitch;
    MinMax mm;
    RangeVectors rv;
    Ranges32 r32;
    if (requant8 != nullptr) init_ranges(rv), init_ranges32(r32);
    thread_local std::vector<int64_t> local;
    if (out.acc_out == nullptr && requant8 == nullptr && local.size() < static_cast<size_t>(kBlock * span)) local.resize(static_cast<size_t>(kBlock * span));
    const Requant8 rq{requant8 != nullptr ? shift_params + o0 : nullptr, out.requant != nullptr ? out.requant->lo() : 0, out.requant != nullptr ? out.requant->hi() : 0};
    // VNNI, every channel of the block on the 16-lane route: requantized in registers.
    const char fusion = fused != nullptr ? fused[g * super_blocks + sb] : 0;
    const bool fused_block = fusion != 0;
    // Its tail pixels requantized in registers too (tail_pixels_fma).
    const bool fma_tail = fusion == 2 && out.ranges_proven;
    for (int64_t x0 = x_begin; x0 < x_end; x0 += kBlock) {
      const int64_t count = std::min(kBlock, x_end - x0);
      const int64_t p = oy * R.out_len + x0;
      // VNNI: the pixels past the last whole vector go by channels (tail_pixels).
      const int64_t vectors = amx ? count : count / 16 * 16;
      a.pixels = row + x0;
      uint8_t* narrow = out.narrow_out != nullptr ? out.narrow_out + (n * out.O + o0) * out.plane + p : nullptr;
      const MixedArgs m{high_mul != nullptr ? high_mul + o0 : nullptr, has_shift != nullptr ? has_shift + o0 : nullptr, requant8, L.out_add.data() + o0, rq, &out, o0};
      if (vectors < count && !fma_tail) {
        tail_pixels(a, vectors, count - vectors, channels);
        mark_taken(any_tail);
      }
      if (fused_block) {
        if (vectors > 0) {
          const FusedBlockOut f{high_mul + o0, channels, vectors, static_cast<int32_t>(rq.lo), static_cast<int32_t>(rq.hi), narrow, out.plane};
          fused_block_fn(!out.ranges_proven, pack, channels > 16, vectors > 16)(a, f, r32);
          if (a.prefetch[0] != nullptr) mark_taken(any_prefetch), a.prefetch[0] = a.prefetch[1] = nullptr;
          mark_taken(any_fused);
          if (out.ranges_proven && pack != BytePack::none && channels >= 4) mark_taken(any_packed);
        }
        if (vectors < count && fma_tail) {
          tail_pixels_requant_fma(a, vectors, count - vectors, channels, high_mul + o0, static_cast<int32_t>(rq.lo), static_cast<int32_t>(rq.hi),
                                  narrow + vectors, out.plane);
          mark_taken(any_tail), mark_taken(any_fma_tail);
        } else if (vectors < count) {
          requant_block_mixed(tile + vectors, count - vectors, channels, m, narrow + vectors, out.plane, rv, r32, mm);
        }
        continue;
      }
      if (vectors > 0) {
        (amx ? kBlocks : kBlocksVnni)[channels > 16][vectors > 16](a);
        if (a.prefetch[0] != nullptr) mark_taken(any_prefetch), a.prefetch[0] = a.prefetch[1] = nullptr;
      }
      if (requant8 != nullptr) {
        requant_block_mixed(tile, count, channels, m, narrow, out.plane, rv, r32, mm);
        continue;
      }
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t add = L.out_add[static_cast<size_t>(o0 + c)];
        int64_t* dst = out.acc_out != nullptr ? out.acc_out + (n * out.O + o0 + c) * out.plane + p : local.data() + c * span + (p - p_begin);
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (int64_t i = 0; i < count; ++i) {
          const int64_t v = static_cast<int64_t>(tile[c * kBlock + i]) + add;
          dst[i] = v, lo = std::min(lo, v), hi = std::max(hi, v);
        }
        mm.acc_min = std::min(mm.acc_min, lo), mm.acc_max = std::max(mm.acc_max, hi);
      }
    }
    if (requant8 != nullptr) {
      merge_ranges(rv, mm);
      merge_ranges32(r32, mm);
    } else {
      for (int64_t c = 0; c < channels; ++c) {
        if (out.acc_out != nullptr)
          finish_run(out, n, o0 + c, p_begin, span, mm);
        else
          finish_run(out, n, o0 + c, p_begin, span, mm, local.data() + c * span);
      }
    }
    totals.local().merge(mm);
  });
  const MinMax total = merged(totals);
  PathCounters& pc = path_counters();
  pc.add(amx ? Path::conv_q8_amx_rows : Path::conv_q8_vnni_rows);
  pc.add(Path::gemm_acc32);
  if (high_mul != nullptr) pc.add(out.ranges_proven ? Path::requant_high_mul16_untracked : Path::requant_high_mul16);
  if (high_mul != nullptr && out.high_mul_fma) pc.add(Path::requant_fma16);
  if (any_fused.load()) pc.add(Path::requant_in_block_vnni);
  if (any_tail.load()) pc.add(Path::conv_q8_vnni_rows_tail);
  if (any_packed.load()) pc.add(Path::requant_in_block_packed);
  if (any_prefetch.load()) pc.add(Path::rows_weight_prefetch);
  if (any_fma_tail.load()) pc.add(Path::rows_tail_requant_fma);
  if (requant8 != nullptr && any_shift) pc.add(Path::gemm_requant8_avx512);
  return total;
}

}  // namespace

}  // namespace qv::integer
