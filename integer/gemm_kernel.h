// The GEMM micro-kernels of conv2d and linear: what they compute and how their operands are packed.
//
// What is packing? The reduction of a conv output (o, pixel) runs over k = (ky, kx, c). Both operands are
// rewritten once into "granules" of 4 bytes that hold consecutive input channels of one k position:
//   Q8   4 channels as bytes: activations u8 (value - offset), weights s8   -> vpdpbusd
//   Q16  2 channels as int16: activations s16 (value - offset), weights s16 -> vpmaddwd / vpdpwssd
//   Q8S  (AVX-512 only) activations of up to 16 bits u16 (value - offset) against s8 weights: each
//        pixel holds two sets of Q8 granules, the low bytes of its cq granules, then their high bytes;
//        a weight vector serves one vpdpbusd on each, and the sums are high * 256 + low (modulo 2^32:
//        exact, the true sum being proven inside int32). Half the weight bytes of Q16.
// Activations become a padded NHWC image of granules per group, [PH][PW][Cq], so the window of an output
// pixel at tap (ky, kx) is Cq consecutive granules: no im2col copy. Weights become, per group and per
// block of 16 output channels, a panel [Kg][16] of granules (Kg = KH*KW*Cq, k in (ky, kx, cq) order), so
// one 64-byte load gives one granule of 16 channels. Channels past C (to fill a granule) and past O (to
// fill a block) have zero weights; the activations there are 0.
//
// The offset makes a signed or off-range activation fit the unsigned operand of vpdpbusd exactly:
// sum w*x = sum w*(x - off) + off*sum(w); the output stage adds off*sum(w[o]) + bias[o] in int64.
//
// A micro-kernel computes, for up to max_mr output pixels and max_nv blocks of 16 channels, the int32
// sums over the granule range [k_begin, k_end). The planner proves that no such sum can leave int32
// (gemm_plan in plan.h), so int32 arithmetic is exact; longer reductions are split into proven chunks.
#pragma once

#include <cstdint>

#include "integer/isa.h"
#include "integer/path_counters.h"

namespace qv::integer {

enum class Packing { q8, q16, q8_split };

struct MicroTile {
  const uint32_t* pixel[32];     // per output pixel: its window origin (tap 0, granule 0) in the packed image
  const int64_t* tap_offset;     // granules from a window origin to tap t = ky*KW + kx
  int64_t cq;                    // granules per input pixel (Q8S: per byte set)
  int64_t high;                  // Q8S: granules from a pixel's low-byte granules to its high-byte ones
  int64_t k_begin, k_end;        // flat granule range over (tap, cq)
  const uint32_t* weight;        // panel of the first channel block, [Kg][16]
  int64_t block_stride;          // granules between consecutive block panels (Kg*16)
  int32_t* out;                  // [mr][nv*16] int32 sums, pixel-major
  int mr, nv;
};

using MicroKernel = void (*)(const MicroTile&);

struct GemmKernel {
  MicroKernel fn;
  Packing packing;
  int max_mr, max_nv;
  Path path;
};

// The kernel of a tier for a packing. Q8 exists on scalar and avx512vnni; Q16 on all three tiers; Q8S
// on the AVX-512 tiers only.
// nullptr when the tier has no kernel for that packing (avx2 runs 8-bit data as Q16).
const GemmKernel* gemm_kernel(Isa isa, Packing packing);

// Tier implementations (one file each).
extern const GemmKernel kGemmQ8Scalar, kGemmQ16Scalar, kGemmQ16Avx2, kGemmQ8Avx512Vnni, kGemmQ16Avx512Vnni, kGemmQ8SplitAvx512Vnni;
// AMX tiles (avx512amx tier): Q8 only, and only for whole reductions (k_begin = 0, k_end = Kg: the
// planner gives chunked layers the vpdpbusd kernel), up to 32 pixels x 2 blocks.
extern const GemmKernel kGemmQ8Amx;

}  // namespace qv::integer
