// Golden-vector building blocks without the pipeline: SHA-256 against the FIPS 180-2 test vectors,
// each file format's bytes, layout reordering, the manifest's self-hash and the atomic directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "ir/error.h"
#include "vectors/atomic_dir.h"
#include "vectors/formats.h"
#include "vectors/golden.h"
#include "vectors/sha256.h"

namespace qv::vectors {
namespace {

namespace fs = std::filesystem;

TEST(Sha256, Fips180_2TestVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalUpdatesInAnyPiecesGiveTheSameDigest) {
  const std::string msg(1000, 'x');
  for (size_t piece : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 200u}) {
    Sha256 h;
    for (size_t i = 0; i < msg.size(); i += piece) h.update(msg.substr(i, piece));
    EXPECT_EQ(h.hex_digest(), sha256_hex(msg)) << piece;
  }
  // Messages around the padding boundary (55, 56, 64 bytes) against a one-shot digest of the same bytes.
  EXPECT_EQ(sha256_hex(std::string(55, 'a')), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha256_hex(std::string(56, 'a')), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha256_hex(std::string(64, 'a')), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

IntTensor sample(IntType type, Shape shape, std::vector<int64_t> data, std::string layout = "NC") {
  IntTensor t(std::move(shape), type, std::move(layout));
  t.data = std::move(data);
  return t;
}

TEST(Formats, ParseFormatsIsStrictAndCanonical) {
  EXPECT_EQ(parse_formats("h,npy,csv"), (std::vector<Format>{Format::npy, Format::csv, Format::h}));
  EXPECT_THROW(parse_formats("npy,xls"), std::invalid_argument);
  EXPECT_THROW(parse_formats("npy,npy"), std::invalid_argument);
  EXPECT_THROW(parse_formats(""), std::invalid_argument);
  EXPECT_THROW(parse_formats("npy,"), std::invalid_argument);
}

TEST(Formats, HexWordsAreTwosComplementInTheStatedWidth) {
  // int5 -> 8-bit words; uint4 -> 4 bits; int20 -> 20 bits; int64 -> 64 bits.
  EXPECT_EQ(encode_hex(sample(IntType{5, true}, {1, 4}, {-16, -1, 0, 15})), "f0\nff\n00\n0f\n");
  EXPECT_EQ(encode_hex(sample(IntType{4, false}, {3}, {0, 9, 15}, "O")), "0\n9\nf\n");
  EXPECT_EQ(encode_hex(sample(IntType{20, true}, {2}, {-302025, 372128}, "O")), "b6437\n5ada0\n");
  EXPECT_EQ(encode_hex(sample(IntType{64, true}, {1}, {-2}, "O")), "fffffffffffffffe\n");
  EXPECT_EQ(hex_word_bits(IntType{1, false}), 4);
  EXPECT_EQ(hex_word_bits(IntType{32, true}), 32);
  EXPECT_EQ(hex_word_bits(IntType{33, true}), 36);
}

TEST(Formats, BinaryIsLittleEndianInTheNpyStorage) {
  EXPECT_EQ(encode_bin(sample(IntType{8, true}, {2}, {-1, 2}, "O")), std::string("\xff\x02", 2));
  EXPECT_EQ(encode_bin(sample(IntType{12, true}, {1}, {-2}, "O")), std::string("\xfe\xff", 2));
  EXPECT_EQ(encode_bin(sample(IntType{20, false}, {1}, {0x12345}, "O")), std::string("\x45\x23\x01\x00", 4));
  EXPECT_EQ(encode_bin(sample(IntType{40, true}, {1}, {1}, "O")).size(), 8u);
  EXPECT_EQ(storage_of(IntType{8, false}).name(), "uint8");
  EXPECT_EQ(storage_of(IntType{33, false}).name(), "int64");
}

TEST(Formats, CsvHasOneLinePerLeadingIndex) {
  EXPECT_EQ(encode_csv(sample(IntType{8, true}, {2, 3}, {1, -2, 3, 4, 5, -128})), "1,-2,3\n4,5,-128\n");
  EXPECT_EQ(encode_csv(sample(IntType{8, true}, {3}, {1, 2, 3}, "O")), "1,2,3\n");
  EXPECT_EQ(encode_csv(sample(IntType{8, true}, {1, 2, 1, 2}, {1, 2, 3, 4}, "NCHW")), "1,2\n3,4\n");
}

TEST(Formats, CHeaderHasShapeMacrosAndATypedArray) {
  const std::string h = encode_c_header(sample(IntType{32, true}, {1, 2}, {INT32_MIN, 7}), "in0000_fc_output", "comment");
  EXPECT_NE(h.find("#include <stdint.h>"), std::string::npos) << h;
  EXPECT_NE(h.find("#define IN0000_FC_OUTPUT_RANK 2\n"), std::string::npos) << h;
  EXPECT_NE(h.find("#define IN0000_FC_OUTPUT_DIM1 2\n"), std::string::npos) << h;
  EXPECT_NE(h.find("#define IN0000_FC_OUTPUT_SIZE 2\n"), std::string::npos) << h;
  EXPECT_NE(h.find("static const int32_t in0000_fc_output[2] = {\n  (-2147483647 - 1), 7,\n};"), std::string::npos) << h;
  const std::string h64 = encode_c_header(sample(IntType{64, true}, {2}, {INT64_MIN, -5}, "O"), "x", "c");
  EXPECT_NE(h64.find("(-INT64_C(9223372036854775807) - 1), INT64_C(-5),"), std::string::npos) << h64;
  EXPECT_EQ(c_identifier("in0000/features.2.conv"), "in0000_features_2_conv");
  EXPECT_EQ(c_identifier("3x"), "v3x");
  EXPECT_EQ(file_component("a/b c.d"), "a_b_c.d");
}

TEST(Formats, NhwcAndOhwiReorderRowMajor) {
  IntTensor t({1, 2, 2, 3}, IntType{8, true}, "NCHW");
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<int64_t>(i);
  const IntTensor u = to_layout(t, "NHWC");
  EXPECT_EQ(u.shape, (Shape{1, 2, 3, 2}));
  EXPECT_EQ(u.layout, "NHWC");
  // (h, w, c) row-major: element (0, 1, 2, c) is t(0, c, 1, 2).
  for (int64_t c = 0; c < 2; ++c) EXPECT_EQ(u.data[static_cast<size_t>((1 * 3 + 2) * 2 + c)], t.at(0, c, 1, 2));
  IntTensor w({2, 1, 1, 2}, IntType{8, true}, "OIHW");
  w.data = {1, 2, 3, 4};
  EXPECT_EQ(to_layout(w, "OHWI").shape, (Shape{2, 1, 2, 1}));
  EXPECT_THROW(to_layout(w, "NHWC"), std::invalid_argument);
}

TEST(Manifest, SelfHashCoversEveryByteButItsOwnValue) {
  nlohmann::json m = {{"b", 1}, {"a", "x"}};
  const std::string bytes = finish_manifest(m);
  const auto parsed = nlohmann::json::parse(bytes);
  EXPECT_EQ(parsed.at("manifest_sha256").get<std::string>(), manifest_self_hash(bytes));
  EXPECT_LT(bytes.find("\"a\""), bytes.find("\"b\""));  // sorted keys
  std::string edited = bytes;
  edited.replace(edited.find("\"x\""), 3, "\"y\"");
  EXPECT_NE(manifest_self_hash(edited), parsed.at("manifest_sha256").get<std::string>());
  EXPECT_EQ(finish_manifest(m), bytes);  // deterministic
}

class Atomic : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("qverify_atomic_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  size_t entries() const { return static_cast<size_t>(std::distance(fs::directory_iterator(root_), fs::directory_iterator())); }
  fs::path root_;
};

TEST_F(Atomic, NothingAppearsUntilCommitAndAFailureLeavesNothing) {
  const std::string out = (root_ / "out").string();
  {
    AtomicDir d(out, false);
    d.write_file("a/b.txt", "hello");
    EXPECT_FALSE(fs::exists(out));
    EXPECT_TRUE(fs::exists(fs::path(d.temp_path()) / "a/b.txt"));
  }  // destroyed uncommitted: as after an exception
  EXPECT_EQ(entries(), 0u);
  {
    AtomicDir d(out, false);
    d.write_file("a/b.txt", "hello");
    d.commit();
  }
  EXPECT_TRUE(fs::is_regular_file(fs::path(out) / "a/b.txt"));
  EXPECT_EQ(entries(), 1u);
  EXPECT_THROW(AtomicDir(out, false), InputError);  // exists, non-empty
  {
    AtomicDir d(out, true);
    d.write_file("c.txt", "new");
    d.commit();
  }
  EXPECT_TRUE(fs::is_regular_file(fs::path(out) / "c.txt"));
  EXPECT_FALSE(fs::exists(fs::path(out) / "a"));
  EXPECT_EQ(entries(), 1u);
  // An existing empty directory is fine without --force.
  fs::create_directories(root_ / "empty");
  AtomicDir e((root_ / "empty").string(), false);
  e.write_file("x", "1");
  e.commit();
  EXPECT_TRUE(fs::is_regular_file(root_ / "empty" / "x"));
}

}  // namespace
}  // namespace qv::vectors
