// Shared by the IR file tests: a network using every op kind and every requantization form, and a
// fresh temporary folder per test.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "ir/builder.h"
#include "ir/network.h"
#include "ir/rational.h"

namespace qv::testing {

// Deterministic values spread over the whole declared type.
inline IntTensor spread_tensor(Shape shape, IntType type, std::string layout, uint64_t seed) {
  IntTensor t(std::move(shape), type, std::move(layout));
  const auto span = static_cast<uint64_t>(type.max() - type.min()) + 1;
  for (size_t i = 0; i < t.data.size(); ++i)
    t.data[i] = type.min() + static_cast<int64_t>((seed * 2654435761u + i * 40503u) % span);
  return t;
}

// Per channel: alpha = (3 + o)/4096 with alternating sign; delta = (o - 2)/7, or one coprime fraction
// far beyond 64 bits when huge_delta.
inline Requant exact_requant(size_t channels, int64_t lo, int64_t hi, bool huge_delta = false) {
  ExactRequant e;
  e.rounding = Rounding::half_even;
  for (size_t o = 0; o < channels; ++o) {
    e.alpha.push_back(Rational(static_cast<int>(3 + o), 1 << 12) * (o % 2 ? -1 : 1));
    if (huge_delta)
      e.delta.push_back(Rational((BigInt(1) << 100) + 1, boost::multiprecision::pow(BigInt(3), 50)));
    else
      e.delta.push_back(Rational(static_cast<int>(o) - 2, 7));
  }
  return Requant{e, lo, hi};
}

// Node indices: 0 x, 1 conv, 2 rq_exact, 3 pool, 4 avg, 5 sat, 6 addrq, 7 flat, 8 fc, 9 rq_mas,
// 10 rq_th, 11 rq_fp, 12 had. Scales on the input, the conv weight and the fc output; metadata with
// characters JSON must escape.
inline Network every_op_network() {
  NetworkBuilder b("every_op");
  b.input("x", {1, 4, 8, 8}, IntType{8, false});
  IntTensor conv_weight = spread_tensor({4, 1, 3, 3}, IntType{4, true}, "OIHW", 1);
  conv_weight.scale = {0.1, 4.9406564584124654e-324, 3.5, 1.0 / 3.0};
  b.conv2d("conv", "x", conv_weight, spread_tensor({4}, IntType{16, true}, "O", 2), 1, 1, 128, 4);
  b.requant("rq_exact", "conv", exact_requant(4, 0, 255, true), IntType{8, false});
  b.max_pool2d("pool", "rq_exact", 2, 2);
  b.avg_pool2d("avg", "pool", 2, 2, 2, Rounding::floor, IntType{8, false});
  b.add_saturating("sat", "avg", "avg", IntType{8, false});
  const Requant branch = exact_requant(4, -1000, 1000);
  b.add_requant("addrq", {"sat", "avg"}, {branch, branch}, IntType{10, true});
  b.flatten("flat", "addrq");
  b.linear("fc", "flat", spread_tensor({6, 16}, IntType{8, true}, "OI", 3), spread_tensor({6}, IntType{32, true}, "O", 4));
  const Requant e6 = exact_requant(6, -128, 127);
  const int64_t lo = -(int64_t{1} << 20), hi = int64_t{1} << 20;
  b.requant("rq_mas", "fc", to_mul_add_shift(e6, 24, lo, hi).requant, IntType{8, true});
  b.requant("rq_th", "fc", to_thresholds(e6, lo, hi).requant, IntType{8, true});
  b.requant("rq_fp", "fc", to_fixed_point(e6, true, lo, hi).requant, IntType{8, true});
  b.hadamard("had", "rq_th", 5, true);
  b.set_metadata("model", "every_op");
  b.set_metadata("note", "quote \" backslash \\ tab \t unicode \xc3\xbc");
  Network net = b.build("had");
  net.nodes[0].output.scale = {0.0078125};
  net.nodes[8].output.scale = {1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3};
  return net;
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A fresh folder named after the running test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("qv_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

}  // namespace qv::testing
