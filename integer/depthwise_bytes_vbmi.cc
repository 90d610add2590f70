#include "integer/depthwise_bytes_vbmi.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace qv::integer {

namespace {

// The bits of lanes [a, b) clipped to [0, 64).
__mmask64 lanes64(int64_t a, int64_t b) {
  const int64_t lo = std::clamp<int64_t>(a, 0, 64), hi = std::clamp<int64_t>(b, 0, 64);
  if (hi <= lo) return 0;
  const uint64_t below_hi = hi == 64 ? ~uint64_t{0} : (uint64_t{1} << hi) - 1;
  return below_hi & ~((uint64_t{1} << lo) - 1);
}

// What the loops read, copied out of the layer, the kernel and the taps into locals: the output stores
// are byte stores, which may alias anything, so values read through references would be reloaded
// after every store (the weights' broadcasts too, on the port vpermb needs).
template <int kKH, int kG, bool kSigned>
struct Operands {
  __m512i index[2], pad;
  __m512i w[kKH > 0 ? kKH * kG : 16];  // [ky * groups + g]: the taps' dwords broadcast (KH * groups <= 16)
  int64_t W, H, PW, stride_w, stride_h, dilation_h, pad_left, pad_top;
  int KH, groups;
  int32_t start;
};

template <int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline Operands<kKH, kG, kSigned> operands(const DepthwiseLayer& L, const BytesDepthwise& B,
                                                                                           const BytesTaps& t) {
  Operands<kKH, kG, kSigned> k;
  k.index[0] = _mm512_load_si512(B.index[0]), k.index[1] = _mm512_load_si512(B.index[1]);
  k.pad = _mm512_set1_epi8(static_cast<char>(B.pad_byte));
  k.KH = kKH > 0 ? kKH : static_cast<int>(L.KH);
  k.groups = kG > 0 ? kG : B.groups;
  for (int i = 0; i < k.KH * k.groups; ++i) k.w[i] = _mm512_set1_epi32(t.w[i]);
  k.W = L.W, k.H = L.H, k.PW = L.PW, k.stride_w = L.stride_w, k.stride_h = L.stride_h, k.dilation_h = L.dilation_h;
  k.pad_left = L.pad_left, k.pad_top = L.pad_top;
  k.start = B.is_signed ? -128 * t.weight_sum : 0;
  return k;
}

// The taps of kernel row ky on the 64 bytes v (column j of the window at lane byte j).
template <int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline __m512i add_row(__m512i acc, __m512i v,
                                                                                                     const Operands<kKH, kG, kSigned>& k, int ky) {
  const int groups = kG > 0 ? kG : k.groups;
  if constexpr (kSigned) v = _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));  // the +128 offset
  // maskz form: GCC 12 warns on the unmasked one's undefined source under -Werror.
  for (int g = 0; g < groups; ++g)
    acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_permutexvar_epi8(~__mmask64{0}, k.index[g], v), k.w[ky * groups + g]);
  return acc;
}

// The sums of outputs (y, x0 .. x0 + 15) read from the input plane (rows: no padded copy).
template <int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline __m512i row_block(const Operands<kKH, kG, kSigned>& k,
                                                                                                       const uint8_t* plane, int64_t y,
                                                                                                       int64_t x0) {
  const int KH = kKH > 0 ? kKH : k.KH;
  const int64_t c0 = x0 * k.stride_w - k.pad_left;
  const __mmask64 cols = lanes64(-c0, k.W - c0);  // window bytes inside the row; the rest take the pad byte
  __m512i acc = _mm512_set1_epi32(k.start);
  for (int ky = 0; ky < KH; ++ky) {
    const int64_t r = y * k.stride_h + ky * k.dilation_h - k.pad_top;
    // Masked-off lanes are never read, so the address may point before the row's first byte.
    const __m512i v = r >= 0 && r < k.H ? _mm512_mask_loadu_epi8(k.pad, cols, plane + r * k.W + c0) : k.pad;
    acc = add_row(acc, v, k, ky);
  }
  return acc;
}

// Flat: the sums of outputs q0 .. q0 + 15 (q = y*PW + x) from the padded copy.
template <int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline __m512i flat_block(const Operands<kKH, kG, kSigned>& k,
                                                                                                        const uint8_t* padded, int64_t q0) {
  const int KH = kKH > 0 ? kKH : k.KH;
  __m512i acc = _mm512_set1_epi32(k.start);
  for (int ky = 0; ky < KH; ++ky) acc = add_row(acc, _mm512_loadu_si512(padded + k.stride_w * q0 + ky * k.dilation_h * k.PW), k, ky);
  return acc;
}

// f.template operator()<kKH, kG, kSigned>() with the shape fixed at compile time for 3x3, 5x5 and 7x7,
// and the signedness (unsigned inputs skip the offset's xor: 3 of a 3x3 block's ~24 operations).
template <class F>
decltype(auto) with_shape(const DepthwiseLayer& L, const BytesDepthwise& B, F&& f) {
  const auto signedness = [&]<int kKH, int kG>() {
    return B.is_signed ? f.template operator()<kKH, kG, true>() : f.template operator()<kKH, kG, false>();
  };
  if (L.KH == 3 && L.KW == 3) return signedness.template operator()<3, 1>();
  if (L.KH == 5 && L.KW == 5) return signedness.template operator()<5, 2>();
  if (L.KH == 7 && L.KW == 7) return signedness.template operator()<7, 2>();
  return signedness.template operator()<0, 0>();
}
template <int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"))) int64_t sums_shaped(const DepthwiseLayer& L, const BytesDepthwise& B,
                                                                                     const uint8_t* plane, const BytesTaps& t,
                                                                                     int32_t* sums) {
  const Operands<kKH, kG, kSigned> k = operands<kKH, kG, kSigned>(L, B, t);
  const int64_t OH = L.OH, OW = L.OW;
  if (B.flat) {
    for (int64_t q0 = 0; q0 < B.q_total; q0 += 16) _mm512_storeu_si512(sums + q0, flat_block(k, plane, q0));
    return k.PW;
  }
  // Full 16-lane stores: a row's lanes past OW are overwritten by the next row (room for 16 past the end).
  for (int64_t y = 0; y < OH; ++y)
    for (int64_t x0 = 0; x0 < OW; x0 += 16) _mm512_storeu_si512(sums + y * OW + x0, row_block(k, plane, y, x0));
  return OW;
}

// Rows: a masked vpmovdb store per 16-lane block.
template <Form16 kForm, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline void requant_rows(
    const Operands<kKH, kG, kSigned>& k, const DepthwiseLayer& L, const uint8_t* plane, const HighMul16& h, uint8_t* dst, Ranges32& local) {
  const int64_t OH = L.OH, OW = L.OW;
  if constexpr (kKH > 0) {
    // The known shapes: each output row's input rows (or none: padding) once, and each block's window
    // mask once per layer run, instead of per block and tap (the scalar work was a third of the loop).
    constexpr int kBlocks = 8;  // rows of up to 128 outputs (MobileNetV2's widest depthwise row is 112)
    if (OW <= 16 * kBlocks) {
      __mmask64 cols[kBlocks];
      int64_t c0[kBlocks];
      const int64_t blocks = (OW + 15) / 16;
      for (int64_t b = 0; b < blocks; ++b) c0[b] = 16 * b * k.stride_w - k.pad_left, cols[b] = lanes64(-c0[b], k.W - c0[b]);
      for (int64_t y = 0; y < OH; ++y) {
        const uint8_t* row[kKH];
        for (int ky = 0; ky < kKH; ++ky) {
          const int64_t ry = y * k.stride_h + ky * k.dilation_h - k.pad_top;
          row[ky] = ry >= 0 && ry < k.H ? plane + ry * k.W : nullptr;
        }
        for (int64_t b = 0; b < blocks; ++b) {
          __m512i acc = _mm512_set1_epi32(k.start);
          for (int ky = 0; ky < kKH; ++ky)
            // Masked-off lanes are never read, so the address may point before the row's first byte.
            acc = add_row(acc, row[ky] != nullptr ? _mm512_mask_loadu_epi8(k.pad, cols[b], row[ky] + c0[b]) : k.pad, k, ky);
          const int64_t n = std::min<int64_t>(16, OW - 16 * b);
          requant_high_mul16_step<kForm, kTrack>(acc, static_cast<__mmask16>((1u << n) - 1), h, dst + y * OW + 16 * b, local);
        }
      }
      return;
    }
  }
  for (int64_t y = 0; y < OH; ++y)
    for (int64_t x0 = 0; x0 < OW; x0 += 16) {
      const int64_t n = std::min<int64_t>(16, OW - x0);
      requant_high_mul16_step<kForm, kTrack>(row_block(k, plane, y, x0), static_cast<__mmask16>((1u << n) - 1), h, dst + y * OW + x0,
                                                  local);
    }
}

// Four blocks' outputs as bytes in one register (x[b] the narrowed block b at bytes 16b ..).
__attribute__((target("avx512f"), always_inline)) inline __m512i four_blocks(const __m128i (&x)[4]) {
  // maskz forms: GCC 12 warns on the unmasked ones' undefined source under -Werror.
  const __m512i low = _mm512_maskz_inserti64x4(0xFF, _mm512_setzero_si512(), _mm256_set_m128i(x[1], x[0]), 0);
  return _mm512_maskz_inserti64x4(0xFF, low, _mm256_set_m128i(x[3], x[2]), 1);
}

// The four blocks compacted by vpermb and written by one masked store of n bytes.
__attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline)) inline void store_compacted(const __m128i (&x)[4], const uint8_t* index,
                                                                                                uint8_t* dst, int64_t n) {
  _mm512_mask_storeu_epi8(dst, lanes64(0, n), _mm512_maskz_permutexvar_epi8(~__mmask64{0}, _mm512_load_si512(index), four_blocks(x)));
}

// Flat: the block at q0 requantized and narrowed (zero past the plane's positions).
template <Form16 kForm, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline __m128i flat_bytes(
    const Operands<kKH, kG, kSigned>& k, const uint8_t* padded, const BytesDepthwise& B, int64_t q0, const HighMul16& h, Ranges32& local) {
  if (q0 >= B.q_total) return _mm_setzero_si128();
  const __m512i y = requant_high_mul16_value<kForm, kTrack>(flat_block(k, padded, q0), B.valid[q0 / 16], h, local);
  return _mm512_maskz_cvtepi32_epi8(0xFFFF, y);
}

// Flat: chunk j's blocks from the padded copy, its own compaction (B.compact[j]).
template <Form16 kForm, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline void requant_compact_flat(
    const Operands<kKH, kG, kSigned>& k, const BytesDepthwise& B, const uint8_t* padded, const HighMul16& h, uint8_t* dst, Ranges32& local) {
  for (int j = 0; j < B.chunks; ++j) {
    const int64_t q0 = 64 * j;  // four named blocks, as in requant_compact_rows
    const __m128i x[4] = {flat_bytes<kForm, kTrack>(k, padded, B, q0, h, local), flat_bytes<kForm, kTrack>(k, padded, B, q0 + 16, h, local),
                          flat_bytes<kForm, kTrack>(k, padded, B, q0 + 32, h, local), flat_bytes<kForm, kTrack>(k, padded, B, q0 + 48, h, local)};
    store_compacted(x, B.compact[j], dst + B.p_begin[j], B.p_begin[j + 1] - B.p_begin[j]);
  }
}

// Output row y0 + b, requantized and narrowed (zero past the chunk's rows).
template <Form16 kForm, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline __m128i row_bytes(
    const Operands<kKH, kG, kSigned>& k, const uint8_t* plane, const BytesDepthwise& B, int64_t y0, int b, int64_t rows, const HighMul16& h,
    Ranges32& local) {
  if (b >= rows) return _mm_setzero_si128();
  const __m512i sums = row_block(k, plane, y0 + b, 0);
  return _mm512_maskz_cvtepi32_epi8(0xFFFF, requant_high_mul16_value<kForm, kTrack>(sums, B.valid[b], h, local));
}

// Rows of at most 16 outputs: a chunk is four output rows (one block each), the same compaction for
// every chunk (B.compact[0]); the last chunk may hold fewer rows. (Wider rows measured slower this way
// than with a masked store per block: 28- and 56-wide layers 1.06-1.16x.)
template <Form16 kForm, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline void requant_compact_rows(
    const Operands<kKH, kG, kSigned>& k, const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const HighMul16& h,
    uint8_t* dst, Ranges32& local) {
  const int64_t OH = L.OH, OW = L.OW;
  for (int64_t y0 = 0; y0 < OH; y0 += 4) {
    const int64_t rows = std::min<int64_t>(4, OH - y0);
    // Four named rows, not a loop over an array: indexed at run time, the array would live in memory
    // and the 32-byte reads of its 16-byte stores would miss store forwarding (2x slower).
    const __m128i x[4] = {row_bytes<kForm, kTrack>(k, plane, B, y0, 0, rows, h, local), row_bytes<kForm, kTrack>(k, plane, B, y0, 1, rows, h, local),
                          row_bytes<kForm, kTrack>(k, plane, B, y0, 2, rows, h, local), row_bytes<kForm, kTrack>(k, plane, B, y0, 3, rows, h, local)};
    store_compacted(x, B.compact[0], dst + y0 * OW, rows * OW);
  }
}

// A plane of at most 64 bytes in one register (L.register_windows): the sums of outputs p0 .. p0 + 15
// (p = y*OW + x), each window one masked vpermb of the plane (pad: the pad byte, offset like the plane
// when signed).
template <int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline __m512i register_block(
    const Operands<kKH, kG, kSigned>& k, const DepthwiseRegisterWindow* windows, __m512i plane, __m512i pad, int64_t p0) {
  const int KH = kKH > 0 ? kKH : k.KH, groups = kG > 0 ? kG : k.groups;
  const DepthwiseRegisterWindow* w = windows + p0 / 16 * KH * groups;
  __m512i acc = _mm512_set1_epi32(k.start);
  for (int t = 0; t < KH * groups; ++t)
    acc = _mm512_dpbusd_epi32(acc, _mm512_mask_permutexvar_epi8(pad, w[t].mask, _mm512_load_si512(w[t].index), plane), k.w[t]);
  return acc;
}

template <Form16 kForm, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline __m128i register_bytes(
    const Operands<kKH, kG, kSigned>& k, const DepthwiseRegisterWindow* windows, __m512i plane, __m512i pad, int64_t p0, int64_t P,
    const HighMul16& h, Ranges32& local) {
  if (p0 >= P) return _mm_setzero_si128();
  const __mmask16 valid = static_cast<__mmask16>(P - p0 >= 16 ? 0xFFFFu : (1u << (P - p0)) - 1);
  const __m512i y = requant_high_mul16_value<kForm, kTrack>(register_block(k, windows, plane, pad, p0), valid, h, local);
  return _mm512_maskz_cvtepi32_epi8(0xFFFF, y);
}

// One channel from its plane in a register: the outputs in order, 64 at a time (four blocks' bytes) by
// one masked store; no padded copy, and no compaction (the windows skip the positions past OW).
template <Form16 kForm, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline void requant_compact_register(
    const Operands<kKH, kG, kSigned>& k, const DepthwiseLayer& L, const uint8_t* src, const HighMul16& h, uint8_t* dst, Ranges32& local) {
  __m512i plane = _mm512_maskz_loadu_epi8(lanes64(0, L.H * L.W), src), pad = k.pad;
  if constexpr (kSigned) {
    const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));  // the +128 offset, as add_row
    plane = _mm512_xor_si512(plane, offset), pad = _mm512_xor_si512(pad, offset);
  }
  const DepthwiseRegisterWindow* w = L.register_windows.data();
  const int64_t P = L.OH * L.OW;
  for (int64_t p0 = 0; p0 < P; p0 += 64) {
    // Four named blocks, as in requant_compact_rows.
    const __m128i x[4] = {register_bytes<kForm, kTrack>(k, w, plane, pad, p0, P, h, local),
                          register_bytes<kForm, kTrack>(k, w, plane, pad, p0 + 16, P, h, local),
                          register_bytes<kForm, kTrack>(k, w, plane, pad, p0 + 32, P, h, local),
                          register_bytes<kForm, kTrack>(k, w, plane, pad, p0 + 48, P, h, local)};
    _mm512_mask_storeu_epi8(dst + p0, lanes64(0, P - p0), four_blocks(x));
  }
}

// Flat planes: the padded copy (see pad_plane_bytes in the header).
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline void pad_plane_into(const DepthwiseLayer& L, const BytesDepthwise& B,
                                                                                            const uint8_t* plane, uint8_t* padded) {
  const __m128i pad = _mm_set1_epi8(static_cast<char>(B.pad_byte));
  // Lanes [pad_left, pad_left + W) of each padded row are the input row; the 16-byte stores overlap the
  // next row, which is written after them.
  const __mmask16 cols = static_cast<__mmask16>(lanes64(L.pad_left, L.pad_left + L.W));
  for (int64_t r = 0; r < L.PH; ++r) {
    const int64_t y = r - L.pad_top;
    // Masked-off lanes are never read, so the address may point before the row's first byte.
    const __m128i v = y >= 0 && y < L.H ? _mm_mask_loadu_epi8(pad, cols, plane + y * L.W - L.pad_left) : pad;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(padded + r * L.PW), v);
  }
}

// The layout's loop for one channel, its operands and 16-lane constants given.
enum class ByteLayout { rows, compact_rows, compact_flat, compact_register };

template <ByteLayout kLayout, Form16 kForm, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"), always_inline)) inline void requant_channel(
    const Operands<kKH, kG, kSigned>& k, const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const HighMul16& h,
    uint8_t* dst, Ranges32& local) {
  if constexpr (kLayout == ByteLayout::compact_register)
    requant_compact_register<kForm, kTrack>(k, L, plane, h, dst, local);
  else if constexpr (kLayout == ByteLayout::compact_flat)
    requant_compact_flat<kForm, kTrack>(k, B, plane, h, dst, local);
  else if constexpr (kLayout == ByteLayout::compact_rows)
    requant_compact_rows<kForm, kTrack>(k, L, B, plane, h, dst, local);
  else
    requant_rows<kForm, kTrack>(k, L, plane, h, dst, local);
}

// One channel's requant into bytes in the given layout: the operands and the 16-lane constants once,
// the ranges in registers (the byte stores may alias r).
template <ByteLayout kLayout, Form16 kForm, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi"))) void requant_bytes_shaped(const DepthwiseLayer& L, const BytesDepthwise& B,
                                                                                           const uint8_t* plane, const BytesTaps& t,
                                                                                           const HighMulChannel& hm, int32_t lo, int32_t hi,
                                                                                           uint8_t* dst, Ranges32& r) {
  Ranges32 local = r;
  requant_channel<kLayout, kForm, kTrack>(operands<kKH, kG, kSigned>(L, B, t), L, B, plane, high_mul16(hm, lo, hi), dst, local);
  r = local;
}

template <ByteLayout kLayout>
void requant_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const BytesTaps& t, const HighMulChannel& h,
                   int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r, bool track) {
  with_shape(L, B, [&]<int kKH, int kG, bool kSigned>() {
    constexpr Form16 kFma = Form16::fma, kLeft = Form16::shift_left, kShift = Form16::shift;
    const Form16 form = form16(h);
    (track ? (form == kFma    ? requant_bytes_shaped<kLayout, kFma, true, kKH, kG, kSigned>
              : form == kLeft ? requant_bytes_shaped<kLayout, kLeft, true, kKH, kG, kSigned>
                              : requant_bytes_shaped<kLayout, kShift, true, kKH, kG, kSigned>)
           : (form == kFma    ? requant_bytes_shaped<kLayout, kFma, false, kKH, kG, kSigned>
              : form == kLeft ? requant_bytes_shaped<kLayout, kLeft, false, kKH, kG, kSigned>
                              : requant_bytes_shaped<kLayout, kShift, false, kKH, kG, kSigned>))(L, B, plane, t, h, lo, hi, dst, r);
  });
}

// A run of channels of a depth-multiplier-1 layer, every one on the 16-lane route and compacted: per
// channel the same as pad_plane_bytes (flat) and requant_bytes_shaped, with the shape, the layout, the
// padded buffer and the ranges decided or loaded once per run instead of per channel (on 7x7 and 14x14
// planes that per-channel work was as long as the channel's own).
template <ByteLayout kLayout, bool kTrack, int kKH, int kG, bool kSigned>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi"))) void requant_run_shaped(
    const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* input, int64_t c_begin, int64_t c_end, const HighMulChannel* hm,
    int32_t lo, int32_t hi, uint8_t* dst, uint8_t* padded, Ranges32& r) {
  static_assert(kLayout != ByteLayout::rows);
  const int64_t plane = L.H * L.W, P = L.OH * L.OW;
  Ranges32 local = r;  // in registers: the byte stores may alias r
  for (int64_t c = c_begin; c < c_end; ++c) {
    const uint8_t* src = input + c * plane;
    if constexpr (kLayout == ByteLayout::compact_flat) pad_plane_into(L, B, src, padded), src = padded;
    const Operands<kKH, kG, kSigned> k = operands<kKH, kG, kSigned>(L, B, L.byte_taps[static_cast<size_t>(c)]);
    const HighMul16 h = high_mul16(hm[c], lo, hi);
    switch (form16(hm[c])) {
      case Form16::fma: requant_channel<kLayout, Form16::fma, kTrack>(k, L, B, src, h, dst + c * P, local); break;
      case Form16::shift_left: requant_channel<kLayout, Form16::shift_left, kTrack>(k, L, B, src, h, dst + c * P, local); break;
      case Form16::shift: requant_channel<kLayout, Form16::shift, kTrack>(k, L, B, src, h, dst + c * P, local); break;
    }
  }
  r = local;
}

}  // namespace

BytesDepthwise bytes_depthwise_for(const DepthwiseLayer& L, const ActSource& in, Isa isa) {
  const bool vbmi = cpu_has_avx512vbmi();
  BytesDepthwise B;
  const bool pad_fits = in.is_signed ? L.pad_value >= -128 && L.pad_value <= 127 : L.pad_value >= 0 && L.pad_value <= 255;
  B.groups = static_cast<int>((L.KW + 3) / 4);
  // The weights' dwords exist only where they are int8 and the kernel rows fit (pack_byte_taps).
  if (!vbmi || !uses_avx512(isa) || in.bytes == nullptr || in.wide != nullptr || !L.acc32 || !pad_fits || L.dilation_w != 1 ||
      L.stride_w < 1 || L.stride_w > 3 || L.byte_taps.size() != static_cast<size_t>(L.O))
    return B;
  B.ok = true;
  B.is_signed = in.is_signed;
  B.pad_byte = static_cast<uint8_t>(L.pad_value);
  B.flat = L.stride_h == L.stride_w && L.PW < 16;
  if (B.flat) {
    // Positions q = y*PW + x of the padded plane; at most 256 of them are compacted, chunk j holding q
    // in [64j, 64j + 64).
    B.q_total = (L.OH - 1) * L.PW + L.OW;
    if (B.q_total <= 256) {
      B.chunks = static_cast<int>((B.q_total + 63) / 64);
      int64_t p = 0;
      for (int j = 0; j < B.chunks; ++j) {
        B.p_begin[j] = p;
        std::memset(B.compact[j], 0, 64);
        for (; p < L.OH * L.OW; ++p) {
          const int64_t q = p / L.OW * L.PW + p % L.OW;
          if (q >= 64 * (j + 1)) break;
          B.compact[j][p - B.p_begin[j]] = static_cast<uint8_t>(q - 64 * j);
        }
      }
      B.p_begin[B.chunks] = p;
      for (int64_t q = 0; q < B.q_total; ++q)
        if (q % L.PW < L.OW) B.valid[q / 16] = static_cast<uint16_t>(B.valid[q / 16] | (1u << (q % 16)));
    }
  } else if (L.OW <= 16) {
    // Rows: four output rows of 16 lanes per chunk.
    B.chunks = 1;
    std::memset(B.compact[0], 0, 64);
    for (int64_t i = 0; i < 4 * L.OW; ++i) B.compact[0][i] = static_cast<uint8_t>(i / L.OW * 16 + i % L.OW);
    for (int b = 0; b < 4; ++b) B.valid[b] = static_cast<uint16_t>(lanes64(0, L.OW));
  }
  for (int g = 0; g < 2; ++g)
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 4; ++j) {
        const int64_t kx = 4 * g + j;  // a tap past KW has weight 0: any byte of the window will do
        B.index[g][4 * i + j] = static_cast<uint8_t>(L.stride_w * i + (kx < L.KW ? kx : 0));
      }
  return B;
}

void pack_register_windows(DepthwiseLayer& L) {
  L.register_windows.clear();
  const int64_t P = L.OH * L.OW;
  if (L.byte_taps.empty() || L.dilation_w != 1 || L.stride_w < 1 || L.stride_w > 3 || L.H * L.W > 64 || P > 256) return;
  const int64_t blocks = (P + 15) / 16, groups = (L.KW + 3) / 4;
  L.register_windows.resize(static_cast<size_t>(blocks * L.KH * groups));
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t ky = 0; ky < L.KH; ++ky)
      for (int64_t g = 0; g < groups; ++g) {
        DepthwiseRegisterWindow& w = L.register_windows[static_cast<size_t>((b * L.KH + ky) * groups + g)];
        for (int64_t lane = 0; lane < 64; ++lane) {
          // Lane byte j of int32 lane i: tap (ky, 4g + j) of output p = 16b + i. A tap past KW has
          // weight 0, and a position in the padding (or an output past the plane) reads the pad byte.
          const int64_t p = 16 * b + lane / 4, kx = 4 * g + lane % 4;
          const int64_t iy = p / L.OW * L.stride_h + ky * L.dilation_h - L.pad_top, ix = p % L.OW * L.stride_w + kx - L.pad_left;
          if (p >= P || kx >= L.KW || iy < 0 || iy >= L.H || ix < 0 || ix >= L.W) continue;
          w.index[lane] = static_cast<uint8_t>(iy * L.W + ix);
          w.mask |= uint64_t{1} << lane;
        }
      }
}

void pack_byte_taps(DepthwiseLayer& L) {
  const int64_t groups = (L.KW + 3) / 4;
  L.byte_taps.clear();
  if (!L.int8_weights || L.KW > 8 || L.KH * groups > 16) return;
  L.byte_taps.resize(static_cast<size_t>(L.O));
  for (int64_t o = 0; o < L.O; ++o) {
    const int32_t* w = L.weight.data() + o * L.KH * L.KW;
    BytesTaps& t = L.byte_taps[static_cast<size_t>(o)];
    for (int64_t ky = 0; ky < L.KH; ++ky)
      for (int64_t g = 0; g < groups; ++g) {
        uint32_t dword = 0;
        for (int64_t j = 0; j < 4; ++j) {
          const int64_t kx = 4 * g + j;
          const int32_t v = kx < L.KW ? w[ky * L.KW + kx] : 0;
          t.weight_sum += v;
          dword |= static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(v))) << (8 * j);
        }
        t.w[ky * groups + g] = static_cast<int32_t>(dword);
      }
  }
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void pad_plane_bytes(const DepthwiseLayer& L, const BytesDepthwise& B,
                                                                             const uint8_t* plane, uint8_t* padded) {
  pad_plane_into(L, B, plane, padded);
}

int64_t sums_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const BytesTaps& t, int32_t* sums) {
  return with_shape(L, B, [&]<int kKH, int kG, bool kSigned>() { return sums_shaped<kKH, kG, kSigned>(L, B, plane, t, sums); });
}

void requant_plane_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const BytesTaps& t,
                         const HighMulChannel& h, int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r, bool track) {
  requant_bytes<ByteLayout::rows>(L, B, plane, t, h, lo, hi, dst, r, track);
}

void requant_compact_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const BytesTaps& t,
                           const HighMulChannel& h, int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r, bool track) {
  (B.flat ? requant_bytes<ByteLayout::compact_flat> : requant_bytes<ByteLayout::compact_rows>)(L, B, plane, t, h, lo, hi, dst, r, track);
}

void requant_compact_bytes_run(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* input, int64_t c_begin, int64_t c_end,
                               const HighMulChannel* hm, int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r, bool track) {
  thread_local std::vector<uint8_t> padded;  // flat: one padded plane, reused by the run's channels
  const bool in_register = !L.register_windows.empty();
  if (B.flat && !in_register && padded.size() < static_cast<size_t>(L.PH * L.PW + 64)) padded.assign(static_cast<size_t>(L.PH * L.PW + 64), 0);
  with_shape(L, B, [&]<int kKH, int kG, bool kSigned>() {
    if (in_register)
      (track ? requant_run_shaped<ByteLayout::compact_register, true, kKH, kG, kSigned>
             : requant_run_shaped<ByteLayout::compact_register, false, kKH, kG, kSigned>)(L, B, input, c_begin, c_end, hm, lo, hi, dst, nullptr, r);
    else if (B.flat)
      (track ? requant_run_shaped<ByteLayout::compact_flat, true, kKH, kG, kSigned> : requant_run_shaped<ByteLayout::compact_flat, false, kKH, kG, kSigned>)(
          L, B, input, c_begin, c_end, hm, lo, hi, dst, padded.data(), r);
    else
      (track ? requant_run_shaped<ByteLayout::compact_rows, true, kKH, kG, kSigned> : requant_run_shaped<ByteLayout::compact_rows, false, kKH, kG, kSigned>)(
          L, B, input, c_begin, c_end, hm, lo, hi, dst, nullptr, r);
  });
}

}  // namespace qv::integer
