// The 16-lane fma form of a requant: y = clamp(floor(t*f + b), lo, hi) with f and b float32, computed
// as vcvtdq2ps, one vfmadd rounded down and one vcvtps2dq rounded down: 3 operations per 16 sums where
// the int32 shift route (requant16_avx512.h) takes 8 (two vpmuldq for even and odd lanes, their bias
// adds, the shifts and the blend).
//
// Why it is exact, not approximately right: with t an int32 of magnitude <= 2^24, float(t) is exact, and
// the fma rounds t*f + b once, down (RD). For any real x, floor(RD(x)) = floor(x) when |x| < 2^24: RD(x)
// is the largest float <= x, and floor(x) is such a float. Beyond 2^24 in magnitude RD(x) keeps its
// side of 2^24, and the clamp to a byte range takes it. So the kernel computes clamp(floor(t*f + b))
// in exact real arithmetic, and with f = F/2^p and b = B/2^p (F, B integers: both are float32 values)
// that is clamp(floor((F*t + B) / 2^p)): a dyadic function, checked against the channel's int32 shift
// route (itself proven equal to the requant) at every output step of the channel's range of t. Both
// are monotone in t, so agreeing at every step (the first t of each output value, and the t before
// it) is agreeing everywhere in the range.
#pragma once

#include <cstdint>

#include "integer/requant_stage.h"

namespace qv::integer {

struct FmaForm {
  float f = 0, b = 0;
  // The same numbers as integers: f = F/2^p, b = B/2^p (what the proof checked).
  int64_t F = 0;
  __int128 B = 0;
  int p = 0;
};

// The fma form equal to the shift route `shift` (y = clamp((((t*mul + bias) << lshift) >> 32) >> rshift))
// on every t in [t_lo, t_hi], or false: the slope is not positive, some |t| > 2^24, t*f + b could leave
// int32, or no float pair (f, b) near the slope passes the check at every step (the steps lie too close to
// a rounding boundary for float32's 24 bits).
bool fma_form_for(const FusedRequant::HighMulParams& shift, int64_t t_lo, int64_t t_hi, int32_t lo, int32_t hi, FmaForm& form);

// The form evaluated exactly (the kernel's reference twin): clamp(floor((F*t + B) / 2^p), lo, hi).
int32_t fma_form_exact(const FmaForm& form, int64_t t, int32_t lo, int32_t hi);

}  // namespace qv::integer
