// .npy reading and writing, checked against the format's rules byte by byte.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ir/error.h"
#include "vectors/npy.h"

namespace qv {
namespace {

TEST(Npy, HeaderFollowsTheFormat) {
  IntTensor t({2, 3}, IntType{8, true}, "NC");
  t.data = {-128, -1, 0, 1, 2, 127};
  const std::string b = encode_npy(t);
  ASSERT_GE(b.size(), 10u);
  EXPECT_EQ(b.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(b[6], 1);  // version 1.0
  EXPECT_EQ(b[7], 0);
  const size_t header_len = static_cast<unsigned char>(b[8]) | (static_cast<unsigned char>(b[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);  // data starts 64-byte aligned
  const std::string header = b.substr(10, header_len);
  EXPECT_EQ(header.back(), '\n');
  EXPECT_NE(header.find("'descr': '|i1'"), std::string::npos) << header;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos);
  EXPECT_NE(header.find("'shape': (2, 3)"), std::string::npos);
  // int8 data, two's complement bytes in C order
  EXPECT_EQ(b.substr(10 + header_len), std::string("\x80\xff\x00\x01\x02\x7f", 6));
}

TEST(Npy, RoundTripsEveryDtype) {
  const auto dir = std::filesystem::temp_directory_path() / ("qv_npy_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const IntType type : {IntType{8, true}, IntType{8, false}, IntType{4, false}, IntType{16, true}, IntType{16, false},
                             IntType{32, true}, IntType{32, false}, IntType{64, true}, IntType{1, true}}) {
    IntTensor t({1, 2, 2, 3}, type, "NCHW");
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = (i % 2) ? type.max() : type.min() + static_cast<int64_t>(i % 3);
    const std::string p = (dir / (type.name() + ".npy")).string();
    write_npy(p, t);
    const IntTensor back = read_npy(p);
    EXPECT_EQ(back.shape, t.shape) << type.name();
    EXPECT_EQ(back.data, t.data) << type.name();
    EXPECT_TRUE(back.type.is_signed == type.is_signed || back.type.bits == 64) << type.name();
  }
  // One-dimensional shapes are written as a 1-tuple "(n,)".
  IntTensor v({5}, IntType{16, true}, "O");
  EXPECT_NE(encode_npy(v).find("'shape': (5,)"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Npy, RefusesWhatItCannotRead) {
  const auto dir = std::filesystem::temp_directory_path() / ("qv_npy_bad_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  IntTensor t({4}, IntType{16, true}, "O");
  const std::string good = encode_npy(t);
  struct Bad {
    std::string name, bytes, expect;
  };
  std::string float_dtype = good;
  float_dtype.replace(float_dtype.find("<i2"), 3, "<f4");
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  const Bad cases[] = {
      {"magic.npy", "PK\x03\x04 not numpy", "magic"},
      {"short.npy", good.substr(0, good.size() - 3), "expected 8 bytes"},
      {"float.npy", float_dtype, "'descr'"},
      {"fortran.npy", fortran, "Fortran"},
      {"header.npy", good.substr(0, 40), "header"},
  };
  for (const Bad& c : cases) {
    const std::string p = (dir / c.name).string();
    std::ofstream(p, std::ios::binary) << c.bytes;
    try {
      read_npy(p);
      ADD_FAILURE() << c.name << " was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(c.name), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qv
