// torch.save checkpoints read without LibTorch. Every fixture in tests/fixtures/checkpoints was
// written by PyTorch (fixtures/make_checkpoints.py), which also printed the values it holds: each
// tensor is compared with those (name, order, dtype, shape, stride, every value bit for bit). Broken
// inputs, from the fixtures damaged at run time and from archives and pickles built here by hand, must
// throw InputError naming the file and the entry or key.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <deque>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <sstream>

#include <unistd.h>

#include "fakequant/checkpoint/pickle.h"
#include "fakequant/checkpoint/torch_checkpoint.h"
#include "fakequant/checkpoint/zip_archive.h"
#include "ir/crc32.h"
#include "ir/error.h"

namespace qv::checkpoint {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

const fs::path kFixtures = fs::path(QV_FIXTURE_DIR) / "checkpoints";

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in) << p;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out) << p;
}

// A scratch directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("qv_checkpoint_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Runs `fn`, which must throw InputError for `file` whose message contains every one of `parts`.
void expect_input_error(const std::function<void()>& fn, const std::string& file,
                        std::initializer_list<std::string> parts) {
  try {
    fn();
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.file(), file) << msg;
    for (const std::string& part : parts) EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected InputError, got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected InputError for " << file << ", nothing was thrown";
}

// ---------------------------------------------------------------------------------------------
// The expected files written by make_checkpoints.py.

struct Expected {
  std::string name, dtype;
  std::vector<int64_t> shape, stride;
  std::vector<std::string> values;  // as printed by Python
};

struct ExpectedFile {
  std::vector<Expected> tensors;
  std::vector<std::string> skipped;
};

std::vector<int64_t> parse_ints(std::istringstream& in) {
  std::vector<int64_t> v;
  for (int64_t x; in >> x;) v.push_back(x);
  return v;
}

ExpectedFile parse_expected(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in) << p;
  ExpectedFile out;
  size_t count = 0;
  bool have_count = false;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string tag;
    ls >> tag;
    if (tag == "tensors") {
      ls >> count;
      have_count = true;
    } else if (tag == "skipped") {
      out.skipped.emplace_back();
      ls >> out.skipped.back();
    } else if (tag == "name") {
      out.tensors.emplace_back();
      ls >> out.tensors.back().name;
    } else if (tag == "dtype") {
      ls >> out.tensors.back().dtype;
    } else if (tag == "shape") {
      out.tensors.back().shape = parse_ints(ls);
    } else if (tag == "stride") {
      out.tensors.back().stride = parse_ints(ls);
    } else if (tag == "values") {
      for (std::string v; ls >> v;) out.tensors.back().values.push_back(v);
    } else if (tag != "end") {
      ADD_FAILURE() << p << ": unknown line '" << line << "'";
    }
  }
  EXPECT_TRUE(have_count) << p;
  EXPECT_EQ(out.tensors.size(), count) << p;
  return out;
}

// Python's repr(float) round-trips through strtod exactly ("nan", "inf", "-0.0" included).
bool same_double(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

void expect_tensor_matches(const Expected& want, const std::string& name, const CheckpointTensor& got,
                           const std::string& fixture) {
  SCOPED_TRACE(fixture + ": tensor '" + want.name + "'");
  EXPECT_EQ(name, want.name);
  EXPECT_EQ(got.dtype, want.dtype);
  EXPECT_EQ(got.shape, want.shape);
  EXPECT_EQ(got.stride, want.stride);
  ASSERT_EQ(got.values.size(), want.values.size());
  if (got.is_floating()) {
    EXPECT_TRUE(got.int_values.empty());
    for (size_t i = 0; i < want.values.size(); ++i) {
      const double expected = std::strtod(want.values[i].c_str(), nullptr);
      EXPECT_TRUE(same_double(got.values[i], expected))
          << "element " << i << ": expected " << want.values[i] << ", got " << got.values[i];
    }
  } else {
    ASSERT_EQ(got.int_values.size(), want.values.size());
    for (size_t i = 0; i < want.values.size(); ++i) {
      const int64_t expected = std::stoll(want.values[i]);
      EXPECT_EQ(got.int_values[i], expected) << "element " << i;
      EXPECT_EQ(got.values[i], static_cast<double>(expected)) << "element " << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Every fixture, tensor by tensor.

class Fixture : public ::testing::TestWithParam<std::string> {};

TEST_P(Fixture, MatchesWhatPyTorchPrinted) {
  const std::string name = GetParam();
  const ExpectedFile want = parse_expected(kFixtures / (name + ".expected.txt"));
  ASSERT_FALSE(want.tensors.empty()) << "a fixture without tensors tests nothing";
  std::vector<std::string> skipped;
  const StateDict got = read_state_dict((kFixtures / (name + ".pt")).string(), &skipped);
  ASSERT_EQ(got.size(), want.tensors.size());
  size_t compared = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    expect_tensor_matches(want.tensors[i], got[i].first, got[i].second, name);
    compared += got[i].second.values.size();
  }
  EXPECT_EQ(skipped, want.skipped);
  EXPECT_GT(compared, 0u);
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, Fixture,
                         ::testing::Values("plain_dict", "sequential", "dtypes", "views", "quantlab"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(Checkpoint, EveryFixtureOnDiskIsTested) {
  // A new fixture must be added to the list above: nothing is silently left out.
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(kFixtures))
    if (e.path().extension() == ".pt" && !e.path().stem().string().starts_with("bad_"))
      found.push_back(e.path().stem().string());
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, (std::vector<std::string>{"dtypes", "plain_dict", "quantlab", "sequential", "views"}));
}

TEST(Checkpoint, SequentialStateDictHasBatchNormCounter) {
  const StateDict sd = read_state_dict((kFixtures / "sequential.pt").string());
  std::vector<std::string> names;
  for (const auto& [n, t] : sd) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                             "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias"}));
  const CheckpointTensor& counter = sd[6].second;
  EXPECT_EQ(counter.dtype, "int64");
  EXPECT_TRUE(counter.shape.empty());
  EXPECT_EQ(counter.int_values, std::vector<int64_t>{123});
}

TEST(Checkpoint, QuantLabWrapperKeepsOtherEntriesReadable) {
  TorchCheckpoint ckpt((kFixtures / "quantlab.pt").string());
  EXPECT_EQ(ckpt.prefix(), "archive");  // saved to a stream
  const PickleValue& root = ckpt.root();
  ASSERT_EQ(root.kind, PickleKind::dict);
  ASSERT_NE(root.get("epoch"), nullptr);
  EXPECT_EQ(root.get("epoch")->kind, PickleKind::integer);
  EXPECT_EQ(root.get("epoch")->integer, 3);
  const PickleValue* opt = root.get("optimizer");
  ASSERT_NE(opt, nullptr);
  EXPECT_EQ(opt->get("lr")->floating, 0.01);
  EXPECT_TRUE(opt->get("nesterov")->boolean);
  EXPECT_EQ(root.get("best")->kind, PickleKind::none);
  const PickleValue* tag = root.get("tag");
  ASSERT_EQ(tag->kind, PickleKind::tuple);
  ASSERT_EQ(tag->items.size(), 2u);
  EXPECT_EQ(tag->items[0]->text, "qat");
  EXPECT_EQ(tag->items[1]->integer, 8);
  // Names as stored: the DataParallel prefix is the caller's business.
  const StateDict sd = read_state_dict(ckpt.path());
  ASSERT_FALSE(sd.empty());
  EXPECT_EQ(sd.front().first, "module.0.weight");
}

TEST(Checkpoint, PrefixIsTheFileStemWhenSavedToAPath) {
  EXPECT_EQ(TorchCheckpoint((kFixtures / "views.pt").string()).prefix(), "views");
}

// ---------------------------------------------------------------------------------------------
// Damaged fixtures.

// Where entry `name`'s data starts in the archive bytes (after its local header).
size_t data_offset(const std::string& path, const std::string& bytes, const std::string& name) {
  ZipArchive zip(path);
  const ZipEntry* e = zip.find(name);
  EXPECT_NE(e, nullptr) << name;
  const size_t h = static_cast<size_t>(e->local_header_offset);
  const auto u16 = [&](size_t at) {
    return static_cast<size_t>(static_cast<unsigned char>(bytes[at]) | (static_cast<unsigned char>(bytes[at + 1]) << 8));
  };
  return h + 30 + u16(h + 26) + u16(h + 28);
}

TEST(CheckpointErrors, TruncatedFile) {
  TempDir dir;
  const std::string good = read_bytes(kFixtures / "sequential.pt");
  for (size_t keep : {good.size() / 2, good.size() - 30, size_t{10}}) {
    SCOPED_TRACE("kept " + std::to_string(keep) + " bytes");
    const std::string path = (dir / "truncated.pt").string();
    write_bytes(path, good.substr(0, keep));
    expect_input_error([&] { read_state_dict(path); }, path, {path, "end-of-central-directory", "truncated"});
  }
}

TEST(CheckpointErrors, FlippedByteInStorageFailsItsCrc) {
  TempDir dir;
  const std::string src = (kFixtures / "sequential.pt").string();
  std::string bytes = read_bytes(src);
  const size_t at = data_offset(src, bytes, "sequential/data/0") + 5;  // storage of '0.weight'
  bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
  const std::string path = (dir / "flipped.pt").string();
  write_bytes(path, bytes);
  // The archive opens and the pickle reads; the damage shows when that storage is read.
  EXPECT_NO_THROW(TorchCheckpoint{path});
  expect_input_error([&] { read_state_dict(path); }, path,
                     {path, "state_dict['0.weight']", "entry 'sequential/data/0'", "CRC-32 mismatch"});
}

TEST(CheckpointErrors, FlippedByteInPickleFailsItsCrc) {
  TempDir dir;
  const std::string src = (kFixtures / "plain_dict.pt").string();
  std::string bytes = read_bytes(src);
  const size_t at = data_offset(src, bytes, "plain_dict/data.pkl") + 7;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x01);
  const std::string path = (dir / "flipped.pt").string();
  write_bytes(path, bytes);
  expect_input_error([&] { read_state_dict(path); }, path, {path, "entry 'plain_dict/data.pkl'", "CRC-32 mismatch"});
}

TEST(CheckpointErrors, NotAZipFile) {
  TempDir dir;
  for (const std::string& content : {std::string("this is not a checkpoint\n"), std::string(), std::string(5000, 'x')}) {
    const std::string path = (dir / "text.pt").string();
    write_bytes(path, content);
    expect_input_error([&] { read_state_dict(path); }, path, {path, "not a ZIP archive", "torch.save"});
  }
}

TEST(CheckpointErrors, MissingFile) {
  const std::string path = (kFixtures / "no_such_file.pt").string();
  expect_input_error([&] { read_state_dict(path); }, path, {path, "cannot open"});
}

TEST(CheckpointErrors, LegacyFormatIsRefusedClearly) {
  const std::string path = (kFixtures / "bad_legacy_format.pt").string();
  expect_input_error([&] { read_state_dict(path); }, path, {path, "legacy", "PyTorch >= 1.6"});
}

TEST(CheckpointErrors, DeflatedEntryIsRefusedByName) {
  const std::string path = (kFixtures / "bad_deflated.pt").string();
  expect_input_error([&] { read_state_dict(path); }, path, {path, "entry 'plain_dict/data.pkl'", "DEFLATE", "STORED"});
}

TEST(CheckpointErrors, MissingStorageNamesTheKey) {
  const std::string path = (kFixtures / "bad_missing_storage.pt").string();
  expect_input_error([&] { read_state_dict(path); }, path,
                     {path, "state_dict['bias']", "'plain_dict/data/1' is missing"});
}

// ---------------------------------------------------------------------------------------------
// Archives and pickles built by hand: the cases PyTorch never writes.

std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}

// A ZIP archive of STORED entries. With zip64, the central directory saturates sizes and offsets and
// gives them in a ZIP64 extra field, as for entries beyond 4 GiB.
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries, bool zip64 = false) {
  std::string out, central;
  for (const auto& [name, data] : entries) {
    const uint32_t crc = qv::crc32(data.data(), data.size());
    const size_t offset = out.size();
    out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) + le(data.size(), 4) +
           le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
    const std::string extra = zip64 ? le(1, 2) + le(24, 2) + le(data.size(), 8) + le(data.size(), 8) + le(offset, 8) : "";
    const uint64_t sat = 0xFFFFFFFFu;
    central += le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) +
               le(zip64 ? sat : data.size(), 4) + le(zip64 ? sat : data.size(), 4) + le(name.size(), 2) +
               le(extra.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(zip64 ? sat : offset, 4) + name +
               extra;
  }
  const size_t cd_offset = out.size();
  out += central;
  out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) + le(entries.size(), 2) +
         le(central.size(), 4) + le(cd_offset, 4) + le(0, 2);
  return out;
}

// Pickle building blocks (opcodes as in pickle.cc).
std::string str(const std::string& s) { return "X" + le(s.size(), 4) + s; }
std::string glob(const std::string& module, const std::string& name) { return "c" + module + "\n" + name + "\n"; }
std::string integer(int64_t v) { return "\x8a\x08" + le(static_cast<uint64_t>(v), 8); }  // LONG1, 8 bytes
std::string ints(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (int64_t x : v) s += integer(x);
  return s + "t";
}
const std::string kProto = "\x80\x02";
const std::string kOrderedDict = glob("collections", "OrderedDict") + ")R";

std::string tensor_pickle(const std::string& storage_type, const std::string& key, int64_t numel, int64_t offset,
                          const std::vector<int64_t>& shape, const std::vector<int64_t>& stride) {
  return glob("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") + glob("torch", storage_type) + str(key) +
         str("cpu") + integer(numel) + "tQ" + integer(offset) + ints(shape) + ints(stride) + "\x89" + kOrderedDict +
         "tR";
}

std::string state_dict_pickle(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string s = kProto + kOrderedDict + "(";
  for (const auto& [k, v] : items) s += str(k) + v;
  return s + "u.";
}

std::string floats(std::initializer_list<float> v) {
  std::string s;
  for (float f : v) s += le(std::bit_cast<uint32_t>(f), 4);
  return s;
}

class HandMade : public ::testing::Test {
 protected:
  // Writes an archive "ckpt/..." with the given pickle and storages; returns its path.
  std::string write(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& storages,
                    bool zip64 = false, const std::vector<std::pair<std::string, std::string>>& more = {}) {
    std::vector<std::pair<std::string, std::string>> entries{{"ckpt/data.pkl", pickle}};
    for (const auto& [k, v] : storages) entries.emplace_back("ckpt/data/" + k, v);
    entries.insert(entries.end(), more.begin(), more.end());
    entries.emplace_back("ckpt/version", "3\n");
    const std::string path = (dir_ / "ckpt.pt").string();
    write_bytes(path, make_zip(entries, zip64));
    return path;
  }
  TempDir dir_;
};

TEST_F(HandMade, Zip64CentralDirectoryFields) {
  const std::string path = write(state_dict_pickle({{"w", tensor_pickle("FloatStorage", "0", 3, 0, {3}, {1})}}),
                                 {{"0", floats({1.5f, -2.0f, 0.25f})}}, /*zip64=*/true);
  const StateDict sd = read_state_dict(path);
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].second.values, (std::vector<double>{1.5, -2.0, 0.25}));
}

TEST_F(HandMade, ViewsOfOneStorageAtOffsets) {
  // Two views and a stride-0 broadcast of a 6-element storage.
  const std::string path = write(state_dict_pickle({{"a", tensor_pickle("FloatStorage", "0", 6, 1, {2, 2}, {1, 2})},
                                                    {"b", tensor_pickle("FloatStorage", "0", 6, 5, {3}, {0})},
                                                    {"c", tensor_pickle("FloatStorage", "0", 6, 0, {0, 4}, {4, 1})}}),
                                 {{"0", floats({0, 1, 2, 3, 4, 5})}});
  const StateDict sd = read_state_dict(path);
  ASSERT_EQ(sd.size(), 3u);
  EXPECT_EQ(sd[0].second.values, (std::vector<double>{1, 3, 2, 4}));
  EXPECT_EQ(sd[1].second.values, (std::vector<double>{5, 5, 5}));
  EXPECT_TRUE(sd[2].second.values.empty());
  EXPECT_EQ(sd[2].second.shape, (std::vector<int64_t>{0, 4}));
}

TEST_F(HandMade, ViewBeyondItsStorage) {
  const std::string path = write(state_dict_pickle({{"w", tensor_pickle("FloatStorage", "0", 3, 1, {3}, {1})}}),
                                 {{"0", floats({1, 2, 3})}});
  expect_input_error([&] { read_state_dict(path); }, path, {path, "state_dict['w']", "exceeds its storage '0'"});
}

TEST_F(HandMade, HugeBroadcastViewIsRefusedBeforeAllocating) {
  const std::string path = write(
      state_dict_pickle({{"w", tensor_pickle("FloatStorage", "0", 1, 0, {1 << 14, 1 << 13}, {0, 0})}}), {{"0", floats({1})}});
  expect_input_error([&] { read_state_dict(path); }, path, {path, "state_dict['w']", "a view of 134217728 elements"});
}

TEST_F(HandMade, StorageOfTheWrongSize) {
  const std::string path = write(state_dict_pickle({{"w", tensor_pickle("FloatStorage", "0", 2, 0, {2}, {1})}}),
                                 {{"0", floats({1, 2, 3})}});
  expect_input_error([&] { read_state_dict(path); }, path, {path, "state_dict['w']", "has 12 bytes, expected 2 float32"});
}

TEST_F(HandMade, UnsupportedStorageType) {
  const std::string path = write(state_dict_pickle({{"q", tensor_pickle("QInt8Storage", "0", 2, 0, {2}, {1})}}),
                                 {{"0", "\x01\x02"}});
  expect_input_error([&] { read_state_dict(path); }, path, {path, "state_dict['q']", "torch.QInt8Storage is not supported"});
}

TEST_F(HandMade, UnsupportedTensorKind) {
  const std::string qt = glob("torch._utils", "_rebuild_qtensor") + "(" + integer(0) + "tR";
  const std::string path = write(state_dict_pickle({{"w", tensor_pickle("FloatStorage", "0", 1, 0, {1}, {1})}, {"q", qt}}),
                                 {{"0", floats({1})}});
  expect_input_error([&] { read_state_dict(path); }, path, {path, "state_dict['q']", "_rebuild_qtensor is not supported"});
}

TEST_F(HandMade, WrapperKeysAndSkippedEntries) {
  // {'model': OrderedDict(w=tensor, n=7), 'w_ema': tensor}: the wrapper wins over the top-level tensor.
  const std::string inner = kOrderedDict + "(" + str("w") + tensor_pickle("FloatStorage", "0", 1, 0, {}, {}) +
                            str("n") + "K\x07" + "u";
  const std::string pickle = kProto + "}(" + str("model") + inner + str("w_ema") +
                             tensor_pickle("FloatStorage", "0", 1, 0, {1}, {1}) + "u.";
  const std::string path = write(pickle, {{"0", floats({4.5f})}});
  std::vector<std::string> skipped;
  const StateDict sd = read_state_dict(path, &skipped);
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].first, "w");
  EXPECT_TRUE(sd[0].second.shape.empty());
  EXPECT_EQ(sd[0].second.values, std::vector<double>{4.5});
  EXPECT_EQ(skipped, std::vector<std::string>{"n"});
}

TEST_F(HandMade, DictWithoutTensors) {
  const std::string path = write(kProto + "}(" + str("epoch") + "K\x03" + str("model") + "Nu.", {});
  expect_input_error([&] { read_state_dict(path); }, path, {path, "without tensors", "'epoch': int 3", "'net'"});
}

TEST_F(HandMade, SavedObjectIsNotADict) {
  const std::string path = write(kProto + "]." , {});
  expect_input_error([&] { read_state_dict(path); }, path, {path, "list of 0 items", "state_dict"});
}

TEST_F(HandMade, BigEndianByteOrder) {
  const std::string path = write(state_dict_pickle({}), {}, false, {{"ckpt/byteorder", "big"}});
  expect_input_error([&] { TorchCheckpoint{path}; }, path, {path, "entry 'ckpt/byteorder'", "'big'"});
}

TEST_F(HandMade, TorchScriptArchive) {
  const std::string path = (dir_ / "script.pt").string();
  write_bytes(path, make_zip({{"m/constants.pkl", kProto + ")."}, {"m/version", "3\n"}}));
  expect_input_error([&] { TorchCheckpoint{path}; }, path, {path, "entry 'm/data.pkl'", "TorchScript"});
}

TEST_F(HandMade, MalformedPickleInsideArchive) {
  const std::string path = write(kProto + "}" + str("k"), {});  // no STOP
  expect_input_error([&] { read_state_dict(path); }, path, {path, "entry 'ckpt/data.pkl'", "truncated"});
}

// ---------------------------------------------------------------------------------------------
// The unpickler alone.

// Unpickled documents stay alive for the whole test binary: tests hold pointers into them.
const PickleValue* unpickle_str(const std::string& s) {
  static std::deque<PickleDocument> docs;
  return &docs.emplace_back(unpickle(s, "test.pkl", "data.pkl")).root();
}

void expect_pickle_error(const std::string& pickle, std::initializer_list<std::string> parts) {
  expect_input_error([&] { unpickle_str(pickle); }, "test.pkl", parts);
}

TEST(Pickle, Scalars) {
  const PickleValue* v = unpickle_str(kProto + "(NK\xffM\xff\xffJ\xfe\xff\xff\xff" "\x88\x89" "G\x3f\xf8\x00\x00\x00\x00\x00\x00"s +
                                        integer(INT64_MIN) + "\x8a\x00"s + "\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
                                        str("h\xc3\xa9") + "\x8c\x01z" "C\x02\x00\x01t."s);
  ASSERT_EQ(v->kind, PickleKind::tuple);
  ASSERT_EQ(v->items.size(), 13u);
  EXPECT_EQ(v->items[0]->kind, PickleKind::none);
  EXPECT_EQ(v->items[1]->integer, 255);
  EXPECT_EQ(v->items[2]->integer, 65535);
  EXPECT_EQ(v->items[3]->integer, -2);
  EXPECT_TRUE(v->items[4]->boolean);
  EXPECT_FALSE(v->items[5]->boolean);
  EXPECT_EQ(v->items[6]->floating, 1.5);  // BINFLOAT is big-endian
  EXPECT_EQ(v->items[7]->integer, INT64_MIN);
  EXPECT_EQ(v->items[8]->integer, 0);
  EXPECT_EQ(v->items[9]->integer, -1);  // 9 bytes, all sign extension
  EXPECT_EQ(v->items[10]->text, "h\xc3\xa9");
  EXPECT_EQ(v->items[11]->text, "z");
  EXPECT_EQ(v->items[12]->kind, PickleKind::bytes);
  EXPECT_EQ(v->items[12]->text, "\x00\x01"s);
}

TEST(Pickle, MemoSharesMutableObjects) {
  // d = {}; memoized and put in a list, then filled through the memo: the list sees the filled dict.
  const PickleValue* v = unpickle_str(kProto + "](}q\x05" "e" "h\x05" + str("a") + "K\x01s" "0.");
  ASSERT_EQ(v->kind, PickleKind::list);
  ASSERT_EQ(v->items.size(), 1u);
  const PickleValue* d = v->items[0];
  ASSERT_EQ(d->entries.size(), 1u);
  EXPECT_EQ(d->get("a")->integer, 1);
}

TEST(Pickle, DictKeepsInsertionOrderAndLastValue) {
  const PickleValue* v =
      unpickle_str(kProto + kOrderedDict + "(" + str("b") + "K\x01" + str("a") + "K\x02" + str("b") + "K\x03" + "K\x05K\x06u" +
                   "}" + str("_metadata") + "}sb.");
  ASSERT_EQ(v->kind, PickleKind::dict);
  ASSERT_EQ(v->entries.size(), 3u);
  EXPECT_EQ(v->entries[0].first->text, "b");
  EXPECT_EQ(v->entries[0].second->integer, 3);
  EXPECT_EQ(v->entries[1].first->text, "a");
  EXPECT_EQ(v->entries[2].first->integer, 5);
}

TEST(Pickle, UnknownObjectsStayInert) {
  // argparse.Namespace(lr=0.1) as protocol 2 pickles it: NEWOBJ then BUILD with its __dict__.
  const PickleValue* v = unpickle_str(kProto + glob("argparse", "Namespace") + ")\x81}" + str("lr") + "K\x01sb.");
  ASSERT_EQ(v->kind, PickleKind::reduce);
  EXPECT_TRUE(v->calls("argparse", "Namespace"));
  ASSERT_NE(v->state, nullptr);
  EXPECT_EQ(v->state->get("lr")->integer, 1);
}

TEST(Pickle, StackGlobalAndProtocol4Opcodes) {
  const PickleValue* v = unpickle_str("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00"s + "\x8c\x05torch\x94\x8c\x0c"
                                        "FloatStorage\x94\x93\x94.");
  EXPECT_TRUE(v->is_global("torch", "FloatStorage"));
}

TEST(Pickle, Errors) {
  expect_pickle_error(kProto + "}", {"data.pkl", "byte 3", "without a STOP opcode", "truncated"});
  expect_pickle_error(kProto + "X\x10\x00\x00\x00" "abc"s, {"byte 2 (opcode 'X')", "needs 16 more bytes"});
  expect_pickle_error(kProto + "\xff.", {"byte 2 (opcode 0xff)", "unknown or unsupported pickle opcode 0xff"});
  expect_pickle_error(kProto + "h\x05.", {"memo index 5 was never stored"});
  expect_pickle_error(kProto + "K\x01\x86.", {"opcode 0x86", "needs 2 values above the last mark but the stack holds 1"});
  expect_pickle_error(kProto + "K\x01(\x85.", {"needs 1 values above the last mark but the stack holds 0"});
  expect_pickle_error(kProto + "t.", {"no MARK to pop to"});
  expect_pickle_error(kProto + "\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00."s, {"does not fit in 64 bits"});
  expect_pickle_error(kProto + "]K\x01K\x02s.", {"SETITEM on a list"});
  expect_pickle_error(kProto + "NN.", {"STOP leaves 1 extra values"});
  expect_pickle_error(kProto + glob("os", "system") + "K\x01R.", {"REDUCE arguments must be a tuple"});
  expect_pickle_error("\x80\x09.", {"unsupported pickle protocol 9"});
  expect_pickle_error(kProto + "ctorch\nFloat", {"GLOBAL name is not terminated"});
}

}  // namespace
}  // namespace qv::checkpoint
