// The qverify command line as a user meets it: exit status and messages, run as a child process.
// The binary's path comes from the QVERIFY environment variable set by tests/meson.build.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "ir/serialize.h"
#include "ir/synthetic.h"
#include "vectors/npy.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

struct Result {
  int status;
  std::string output;  // stdout and stderr together
};

Result run(const std::string& args) {
  const char* exe = std::getenv("QVERIFY");
  if (!exe) ADD_FAILURE() << "QVERIFY is not set";
  const std::string cmd = std::string(exe ? exe : "qverify") + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int raw = pclose(p);
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw), out};
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qverify_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run("").status, 2);
  Result r = run("frobnicate");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("unknown command 'frobnicate'"), std::string::npos) << r.output;
  r = run("run --synthetic resnet50 --resolution 32");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("unknown synthetic model 'resnet50'"), std::string::npos) << r.output;
  r = run("run --synthetic vgg16 --resolution banana");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("resolution"), std::string::npos) << r.output;
  EXPECT_EQ(run("run").status, 2);                         // neither --ir nor --synthetic
  EXPECT_EQ(run("ir validate").status, 2);                 // missing FILE
  EXPECT_EQ(run("ir validate " + path("absent.json")).status, 2);
}

TEST_F(Cli, ModelsListsNetworksSchemesAndShippedConfigs) {
  const Result r = run("models");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* s : {"mobilenet_v1", "proxylessnas_mobile14", "vgg11|13|16|19[_bn]", "mobilenet_v2", "fp32, brevitas, pact, tqt",
                        "pact.json", "tqt.json", "fp32.json", "brevitas_4b.json"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  EXPECT_EQ(run("models extra").status, 2);
}

TEST_F(Cli, RunsASyntheticNetworkAndPrintsItsTrace) {
  const Result r = run("run --synthetic mobilenet_v2 --resolution 32 --threads 2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("crc32"), std::string::npos);
  EXPECT_NE(r.output.find("reference:"), std::string::npos);
  // One thread or two: the same checksum of the output.
  const Result one = run("run --synthetic mobilenet_v2 --resolution 32 --threads 1");
  ASSERT_EQ(one.status, 0) << one.output;
  auto checksum = [](const std::string& s) { return s.substr(s.find("checksum")); };
  EXPECT_EQ(checksum(one.output), checksum(r.output));
  const Result j = run("run --synthetic mobilenet_v2 --resolution 32 --json");
  ASSERT_EQ(j.status, 0) << j.output;
  EXPECT_EQ(j.output.front(), '{');
}

TEST_F(Cli, IrFilesRoundTripThroughTheCommandLine) {
  Result r = run("ir synth --model mobilenet_v2 --resolution 32 --seed 7 --out " + path("m.json"));
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("ir validate " + path("m.json"));
  EXPECT_EQ(r.status, 0) << r.output;
  const Result from_file = run("run --ir " + path("m.json") + " --seed 7 --json");
  const Result synthetic = run("run --synthetic mobilenet_v2 --resolution 32 --seed 7 --json");
  ASSERT_EQ(from_file.status, 0) << from_file.output;
  // The layer rows (checksums included) agree; only timing differs.
  auto layers = [](const std::string& s) { return s.substr(s.find("\"layers\"")); };
  EXPECT_EQ(layers(from_file.output), layers(synthetic.output));
}

TEST_F(Cli, BadIrFileExitsTwoNamingFileNodeAndField) {
  ASSERT_EQ(run("ir synth --model mobilenet_v2 --resolution 32 --out " + path("m.json")).status, 0);
  std::string json;
  {
    std::ifstream f(path("m.json"));
    json.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  // A bit width of 65 on the first type string found.
  const auto at = json.find("\"uint8\"");
  ASSERT_NE(at, std::string::npos);
  std::string bad = json;
  bad.replace(at, 7, "\"uint65\"");
  std::ofstream(path("bad.json")) << bad;
  fs::copy_file(path("m.bin"), path("bad.bin"));
  // The .bin name inside the JSON is relative to the JSON file; keep the original name reachable.
  Result r = run("ir validate " + path("bad.json"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("bad.json"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("uint65"), std::string::npos) << r.output;
  r = run("run --ir " + path("bad.json"));
  EXPECT_EQ(r.status, 2) << r.output;

  // A truncated tensor file.
  fs::resize_file(path("m.bin"), fs::file_size(path("m.bin")) / 2);
  r = run("run --ir " + path("m.json"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("m.json"), std::string::npos) << r.output;
}

TEST_F(Cli, BadInputArrayExitsTwo) {
  ASSERT_EQ(run("ir synth --model mobilenet_v2 --resolution 32 --out " + path("m.json")).status, 0);
  IntTensor wrong_shape({1, 3, 16, 16}, IntType{8, false}, "NCHW");
  write_npy(path("small.npy"), wrong_shape);
  Result r = run("run --ir " + path("m.json") + " --input " + path("small.npy"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("small.npy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[1, 3, 32, 32]"), std::string::npos) << r.output;

  IntTensor out_of_range({1, 3, 32, 32}, IntType{16, true}, "NCHW");
  out_of_range.data[5] = -1;
  write_npy(path("neg.npy"), out_of_range);
  r = run("run --ir " + path("m.json") + " --input " + path("neg.npy"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("element 5"), std::string::npos) << r.output;

  std::ofstream(path("junk.npy")) << "not an array";
  r = run("run --ir " + path("m.json") + " --input " + path("junk.npy"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("junk.npy"), std::string::npos) << r.output;

  IntTensor good({1, 3, 32, 32}, IntType{8, false}, "NCHW");
  for (size_t i = 0; i < good.data.size(); ++i) good.data[i] = static_cast<int64_t>(i % 256);
  write_npy(path("good.npy"), good);
  r = run("run --ir " + path("m.json") + " --input " + path("good.npy"));
  EXPECT_EQ(r.status, 0) << r.output;
}

}  // namespace
}  // namespace qv

namespace qv {
namespace {

// The main job from the command line: exit 0 with every difference explained, the table and JSON,
// and exit 2 with a message naming the flag, file or key for every kind of bad input.
TEST_F(Cli, MainJobExplainsEveryDifference) {
  Result r = run("--model mobilenet_v2 --config pact.json --resolution 64");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("verdict: every difference explained"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("harmonization inserted"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("optimized backend: 0 of"), std::string::npos) << r.output;
  r = run("--model mobilenet_v1 --config brevitas_4b.json --resolution 64 --json --requant thresholds");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));  // after the progress lines
  EXPECT_EQ(j["verdict"], "explained");
  EXPECT_EQ(j["requant"], "thresholds");
  EXPECT_EQ(j["float32"]["unexplained"], 0);
  EXPECT_GT(j["float32"]["layers"].size(), 20u);
  // A PNG input goes through the models' geometry (resize, central crop) and normalization.
  r = run("--model mobilenet_v2 --config pact.json --resolution 64 --no-optimized --input " + std::string(QV_FIXTURE_DIR) +
          "/images/gradient_80x60.png");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("gradient_80x60.png (64x64 after resize and crop)"), std::string::npos) << r.output;
}

TEST_F(Cli, MainJobBadInputExitsTwo) {
  struct Case {
    std::string args, expect;
  };
  const std::string bad_config = path("bad.json");
  {
    std::ofstream f(bad_config);
    f << R"({"format": "qverify-config", "version": 1, "name": "bad", "scheme": "pact",
           "defaults": {"activation": {"bits": 0}}})";
  }
  const std::string bad_image = path("image.npy");
  IntTensor img({8, 8, 3}, IntType{8, false}, "NC");
  write_npy(bad_image, img);
  const Case cases[] = {
      {"--model resnet50 --config pact.json", "unknown model 'resnet50'"},
      {"--model mobilenet_v2", "--config is required"},
      {"--model mobilenet_v2 --config nothing.json", "nothing.json"},
      {"--model mobilenet_v2 --config " + bad_config, "bits"},
      {"--model mobilenet_v2 --config fp32.json", "fp32 quantizes nothing"},
      {"--model mobilenet_v2 --config pact.json --requant round", "unknown requant form 'round'"},
      {"--model mobilenet_v2 --config pact.json --requant mulshift:99", "mulshift:D"},
      {"--model mobilenet_v2 --config pact.json --resolution 7", "--resolution"},
      {"--model mobilenet_v2 --config pact.json --threads 0", "--threads"},
      {"--model mobilenet_v2 --config pact.json --input " + path("absent.npy"), "absent.npy"},
      {"--model mobilenet_v2 --config pact.json --resolution 64 --input " + bad_image, "is 8x8 but --resolution is 64"},
      {"--model mobilenet_v2 --config pact.json --input " + path("photo.png"), "photo.png: cannot open"},
      {"--model mobilenet_v2 --config pact.json --input " + bad_config, "not a PNG or JPEG image"},
      {"--model mobilenet_v2 --config pact.json --weights " + path("absent.pt"), "absent.pt"},
      {"--model mobilenet_v2 --config pact.json --frobnicate", "frobnicate"},
  };
  for (const Case& c : cases) {
    const Result r = run(c.args);
    EXPECT_EQ(r.status, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << c.args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace qv
