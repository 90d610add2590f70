#include "integer/requant_stage.h"

#include <algorithm>
#include <stdexcept>

#include "integer/path_counters.h"

namespace qv::integer {

namespace {

constexpr __int128 kInt64Limit = static_cast<__int128>(INT64_MAX);

// R(num / 2^shift), shift in [0, 62]: round_shift_right of ir/rounding.h with the mode fixed at compile
// time. q = floor(num / 2^s) by arithmetic shift, rem in [0, 2^s) the floor remainder.
template <Rounding R>
inline int64_t round_shift(int64_t num, int shift) {
  if (shift == 0) return num;
  const int64_t q = num >> shift;
  const int64_t rem = num & ((int64_t{1} << shift) - 1);
  const int64_t half = int64_t{1} << (shift - 1);
  if constexpr (R == Rounding::floor) return q;
  if constexpr (R == Rounding::ceil) return q + (rem != 0);
  if constexpr (R == Rounding::trunc) return q + (rem != 0 && q < 0);
  if constexpr (R == Rounding::half_up) return q + (rem >= half);
  if constexpr (R == Rounding::half_down) return q + (rem > half);
  if constexpr (R == Rounding::half_even) return q + (rem > half || (rem == half && (q & 1) != 0));
  if constexpr (R == Rounding::half_away) return q + (rem > half || (rem == half && q >= 0));
  return q;
}

template <Rounding R>
void exact_shift_run(int64_t mul, int64_t add, int shift, int64_t lo, int64_t hi, const int64_t* acc, int64_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = round_shift<R>(mul * acc[i] + add, shift);  // no overflow: proven in the constructor
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
}

bool fits_int64(const BigInt& v) { return v >= INT64_MIN && v <= INT64_MAX; }

// |mul| * max(|acc_lo|, |acc_hi|) + |add| < 2^63: mul*acc + add cannot overflow int64.
bool affine_fits_int64(int64_t mul, int64_t add, int64_t acc_lo, int64_t acc_hi) {
  const __int128 amax = std::max<__int128>(-static_cast<__int128>(acc_lo), static_cast<__int128>(acc_hi));
  const __int128 m = mul < 0 ? -static_cast<__int128>(mul) : mul;
  const __int128 a = add < 0 ? -static_cast<__int128>(add) : add;
  if (m != 0 && amax > (kInt64Limit - a) / m) return false;
  return m * amax + a <= kInt64Limit;
}

}  // namespace

FusedRequant::FusedRequant(const Requant& rq, int64_t acc_lo, int64_t acc_hi) : rq_(&rq) {
  const size_t C = rq.channels();
  channels_.resize(C);
  PathCounters& pc = path_counters();
  switch (rq.kind()) {
    case RequantForm::exact: {
      const auto& f = std::get<ExactRequant>(rq.form);
      if (f.delta.size() != f.alpha.size()) throw std::invalid_argument("exact requant: alpha and delta sizes differ");
      rounding_ = f.rounding;
      bool any_ref = false, any_shift = false;
      for (size_t o = 0; o < C; ++o) {
        using boost::multiprecision::denominator;
        using boost::multiprecision::numerator;
        const BigInt p = numerator(f.alpha[o]), q = denominator(f.alpha[o]);
        const BigInt r = numerator(f.delta[o]), s = denominator(f.delta[o]);
        BigInt mul = p * s, add = r * q, den = q * s;
        const BigInt g = gcd(gcd(mul, add), den);
        mul /= g, add /= g, den /= g;
        const unsigned long k = msb(den);
        Channel& ch = channels_[o];
        if (lsb(den) == k && k <= 62 && fits_int64(mul) && fits_int64(add) &&
            affine_fits_int64(static_cast<int64_t>(mul), static_cast<int64_t>(add), acc_lo, acc_hi)) {
          ch = Channel{Route::exact_shift, static_cast<int64_t>(mul), static_cast<int64_t>(add), static_cast<int>(k)};
          any_shift = true;
        } else {
          any_ref = true;
        }
      }
      if (any_shift) pc.add(Path::requant_exact_shift);
      if (any_ref) pc.add(Path::requant_exact_bigint);
      break;
    }
    case RequantForm::mul_add_shift: {
      const auto& f = std::get<MulAddShiftRequant>(rq.form);
      bool any64 = false, any128 = false, any_ref = false;
      const bool range_ok = acc_lo > -(int64_t{1} << 62) && acc_hi < (int64_t{1} << 62);  // requant_fixed's precondition
      for (size_t o = 0; o < C; ++o) {
        Channel& ch = channels_[o];
        ch.mul = f.mul[o], ch.add = f.add[o], ch.shift = f.shift;
        if (affine_fits_int64(f.mul[o], f.add[o], acc_lo, acc_hi)) {
          ch.route = Route::mul_add_shift_int64;
          any64 = true;
        } else if (range_ok && f.mul[o] > -(int64_t{1} << 62) && f.mul[o] < (int64_t{1} << 62)) {
          ch.route = Route::mul_add_shift_int128;  // |acc*mul| < 2^124, + |add| < 2^63: fits __int128
          any128 = true;
        } else {
          any_ref = true;
        }
      }
      if (any64) pc.add(Path::requant_mul_add_shift_int64);
      if (any128) pc.add(Path::requant_mul_add_shift_int128);
      if (any_ref) pc.add(Path::requant_ref);
      break;
    }
    case RequantForm::thresholds: {
      const bool ok = acc_lo > -(int64_t{1} << 62) && acc_hi < (int64_t{1} << 62);
      for (Channel& ch : channels_) ch.route = ok ? Route::thresholds : Route::reference;
      pc.add(ok ? Path::requant_thresholds : Path::requant_ref);
      break;
    }
    case RequantForm::fixed_point: {
      const auto& f = std::get<FixedPointRequant>(rq.form);
      bool any_ref = false, any_fixed = false;
      for (size_t o = 0; o < C; ++o) {
        const int left = f.double_rounding ? std::max(f.shift[o], 0) : 0;
        const __int128 x_lo = (static_cast<__int128>(acc_lo) + f.bias[o]) * (__int128{1} << left);
        const __int128 x_hi = (static_cast<__int128>(acc_hi) + f.bias[o]) * (__int128{1} << left);
        const bool shift_ok = f.shift[o] >= -31 && f.shift[o] <= (f.double_rounding ? 31 : 30) &&
                              (f.double_rounding ? -f.shift[o] <= 31 : true);
        if (shift_ok && x_lo >= INT32_MIN && x_hi <= INT32_MAX) {
          channels_[o].route = f.double_rounding ? Route::fixed_double : Route::fixed_single;
          any_fixed = true;
        } else {
          any_ref = true;
        }
      }
      if (any_fixed) pc.add(f.double_rounding ? Path::requant_fixed_point_double : Path::requant_fixed_point_single);
      if (any_ref) pc.add(Path::requant_ref);
      break;
    }
  }
}

void FusedRequant::apply(size_t o, const int64_t* acc, int64_t* y, int64_t n) const {
  const Channel& ch = channels_[o];
  const int64_t lo = rq_->lo, hi = rq_->hi;
  switch (ch.route) {
    case Route::exact_shift:
      switch (rounding_) {
        case Rounding::half_even: return exact_shift_run<Rounding::half_even>(ch.mul, ch.add, ch.shift, lo, hi, acc, y, n);
        case Rounding::half_up: return exact_shift_run<Rounding::half_up>(ch.mul, ch.add, ch.shift, lo, hi, acc, y, n);
        case Rounding::half_away: return exact_shift_run<Rounding::half_away>(ch.mul, ch.add, ch.shift, lo, hi, acc, y, n);
        case Rounding::half_down: return exact_shift_run<Rounding::half_down>(ch.mul, ch.add, ch.shift, lo, hi, acc, y, n);
        case Rounding::floor: return exact_shift_run<Rounding::floor>(ch.mul, ch.add, ch.shift, lo, hi, acc, y, n);
        case Rounding::ceil: return exact_shift_run<Rounding::ceil>(ch.mul, ch.add, ch.shift, lo, hi, acc, y, n);
        case Rounding::trunc: return exact_shift_run<Rounding::trunc>(ch.mul, ch.add, ch.shift, lo, hi, acc, y, n);
      }
      return;
    case Route::mul_add_shift_int64:
      for (int64_t i = 0; i < n; ++i) {
        const int64_t v = (acc[i] * ch.mul + ch.add) >> ch.shift;  // arithmetic shift: floor
        y[i] = v < lo ? lo : v > hi ? hi : v;
      }
      return;
    case Route::mul_add_shift_int128:
      for (int64_t i = 0; i < n; ++i) {
        const __int128 v = (static_cast<__int128>(acc[i]) * ch.mul + ch.add) >> ch.shift;
        y[i] = v < lo ? lo : v > hi ? hi : static_cast<int64_t>(v);
      }
      return;
    case Route::thresholds: {
      const auto& f = std::get<ThresholdRequant>(rq_->form);
      const std::vector<int64_t>& t = f.thresholds[o];
      const int64_t sign = f.sign[o];
      for (int64_t i = 0; i < n; ++i) {
        const int64_t s = acc[i] * sign;  // |acc| < 2^62, sign in {-1, 0, 1}
        y[i] = lo + (std::upper_bound(t.begin(), t.end(), s) - t.begin());
      }
      return;
    }
    case Route::fixed_single:
    case Route::fixed_double:
      for (int64_t i = 0; i < n; ++i) y[i] = requant_fixed(*rq_, o, acc[i]);  // preconditions proven above
      return;
    case Route::reference:
      for (int64_t i = 0; i < n; ++i) y[i] = requant_ref(*rq_, o, BigInt(acc[i]));
      return;
  }
}

}  // namespace qv::integer
