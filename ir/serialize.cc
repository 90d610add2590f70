#include "ir/serialize.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <unistd.h>

#include "ir/crc32.h"
#include "ir/json_field.h"
#include "ir/error.h"
#include "ir/rational.h"
#include "ir/validate.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

constexpr int kVersion = 1;

std::string bin_path_for(const std::string& json_path) {
  fs::path p(json_path);
  if (p.extension() == ".json") p.replace_extension(".bin");
  else p += ".bin";
  return p.string();
}

// Narrowest standard storage for a declared type: bytes and signedness.
std::pair<int, bool> storage_of(IntType t) {
  for (int bytes : {1, 2, 4}) {
    if (t.bits <= bytes * 8) return {bytes, t.is_signed};
  }
  return {8, true};
}

std::string storage_name(std::pair<int, bool> s) { return (s.second ? "int" : "uint") + std::to_string(s.first * 8); }

std::string crc32_hex(std::string_view bytes) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", crc32(bytes));
  return hex;
}

// ---- writing ----

class TensorWriter {
 public:
  json write(const IntTensor& t) {
    while (bytes_.size() % 8) bytes_.push_back('\0');
    const auto st = storage_of(t.type);
    json j;
    j["shape"] = t.shape;
    j["type"] = t.type.name();
    j["layout"] = t.layout;
    if (!t.scale.empty()) j["scale"] = t.scale;
    j["storage"] = storage_name(st);
    j["offset"] = bytes_.size();
    j["count"] = t.data.size();
    const size_t begin = bytes_.size();
    for (int64_t v : t.data) {
      const auto u = static_cast<uint64_t>(v);
      for (int b = 0; b < st.first; ++b) bytes_.push_back(static_cast<char>((u >> (8 * b)) & 0xFF));
    }
    // Per tensor, so that a damaged tensor file names the tensor that was hit.
    j["crc32"] = crc32_hex(std::string_view(bytes_).substr(begin));
    return j;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

json value_info_json(const ValueInfo& v) {
  json j;
  j["shape"] = v.shape;
  j["type"] = v.type.name();
  if (!v.scale.empty()) j["scale"] = v.scale;
  return j;
}

json rationals_json(const std::vector<Rational>& v) {
  json a = json::array();
  for (const Rational& q : v) a.push_back(to_string(q));
  return a;
}

json requant_json(const Requant& rq) {
  json j;
  j["form"] = std::string(to_string(rq.kind()));
  j["lo"] = rq.lo;
  j["hi"] = rq.hi;
  std::visit(
      [&](const auto& f) {
        using F = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<F, ExactRequant>) {
          j["rounding"] = std::string(to_string(f.rounding));
          j["alpha"] = rationals_json(f.alpha);
          j["delta"] = rationals_json(f.delta);
        } else if constexpr (std::is_same_v<F, MulAddShiftRequant>) {
          j["mul"] = f.mul;
          j["add"] = f.add;
          j["shift"] = f.shift;
        } else if constexpr (std::is_same_v<F, ThresholdRequant>) {
          json s = json::array();
          for (int8_t v : f.sign) s.push_back(static_cast<int>(v));
          j["sign"] = s;
          j["thresholds"] = f.thresholds;
        } else {
          j["bias"] = f.bias;
          j["multiplier"] = f.multiplier;
          j["shift"] = f.shift;
          j["zero_point"] = f.zero_point;
          j["double_rounding"] = f.double_rounding;
        }
      },
      rq.form);
  return j;
}

json node_json(const Node& n, TensorWriter& tw) {
  json j;
  j["name"] = n.name;
  j["op"] = std::string(to_string(n.kind()));
  j["inputs"] = n.inputs;
  j["output"] = value_info_json(n.output);
  std::visit(
      [&](const auto& op) {
        using T = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<T, Conv2dOp>) {
          j["weight"] = tw.write(op.weight);
          if (op.bias) j["bias"] = tw.write(*op.bias);
          j["stride"] = {op.stride_h, op.stride_w};
          j["padding"] = {op.pad_top, op.pad_bottom, op.pad_left, op.pad_right};
          j["pad_value"] = op.pad_value;
          j["dilation"] = {op.dilation_h, op.dilation_w};
          j["groups"] = op.groups;
        } else if constexpr (std::is_same_v<T, LinearOp>) {
          j["weight"] = tw.write(op.weight);
          if (op.bias) j["bias"] = tw.write(*op.bias);
        } else if constexpr (std::is_same_v<T, MaxPool2dOp>) {
          j["kernel"] = {op.kernel_h, op.kernel_w};
          j["stride"] = {op.stride_h, op.stride_w};
          j["padding"] = {op.pad_top, op.pad_bottom, op.pad_left, op.pad_right};
        } else if constexpr (std::is_same_v<T, AvgPool2dOp>) {
          j["kernel"] = {op.kernel_h, op.kernel_w};
          j["stride"] = {op.stride_h, op.stride_w};
          j["shift"] = op.shift;
          j["rounding"] = std::string(to_string(op.rounding));
        } else if constexpr (std::is_same_v<T, AddRequantOp>) {
          json b = json::array();
          for (const Requant& rq : op.branches) b.push_back(requant_json(rq));
          j["branches"] = b;
        } else if constexpr (std::is_same_v<T, HadamardOp>) {
          j["out_features"] = op.out_features;
          j["negate"] = op.negate;
        } else if constexpr (std::is_same_v<T, RequantOp>) {
          j["requant"] = requant_json(op.requant);
        }
      },
      n.op);
  return j;
}

void write_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw InputError(path, "", "cannot write file");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw InputError(path, "", "cannot rename the temporary file into place: " + ec.message());
  }
}

// ---- reading ----


// Positive dimensions whose product stays below 2^62, so element counts never overflow.
Shape read_shape(const Field& f) {
  const Shape shape = f.integers();
  int64_t elements = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] <= 0) f.at(i).fail("dimensions must be positive, got " + std::to_string(shape[i]));
    if (shape[i] > (int64_t{1} << 62) / elements) f.fail("more than 2^62 elements in " + to_string(shape));
    elements *= shape[i];
  }
  return shape;
}

class TensorReader {
 public:
  TensorReader(const std::string& bytes) : bytes_(bytes) {}
  IntTensor read(const Field& f) const {
    f.only_keys({"shape", "type", "layout", "scale", "storage", "offset", "count", "crc32"});
    IntTensor t;
    t.shape = read_shape(f.at("shape"));
    t.type = f.at("type").int_type();
    t.layout = f.at("layout").string();
    if (f.has("scale")) t.scale = f.at("scale").numbers();
    const std::string storage = f.at("storage").string();
    const auto st = storage_of(t.type);
    if (storage != storage_name(st))
      f.at("storage").fail("expected '" + storage_name(st) + "' for type " + t.type.name() + ", got '" + storage + "'");
    const int64_t offset = f.at("offset").integer(), count = f.at("count").integer();
    if (count != element_count(t.shape))
      f.at("count").fail("expected " + std::to_string(element_count(t.shape)) + " elements for shape " + to_string(t.shape) +
                         ", got " + std::to_string(count));
    const uint64_t size = bytes_.size();
    if (offset < 0 || offset % 8 != 0) f.at("offset").fail("expected a non-negative multiple of 8, got " + std::to_string(offset));
    if (static_cast<uint64_t>(offset) > size || static_cast<uint64_t>(count) > (size - static_cast<uint64_t>(offset)) / st.first)
      f.at("offset").fail("tensor bytes [" + std::to_string(offset) + ", +" + std::to_string(count) + " x " +
                          std::to_string(st.first) + ") run past the end of the tensor file (" + std::to_string(size) +
                          " bytes): truncated?");
    const std::string_view stored = std::string_view(bytes_).substr(static_cast<size_t>(offset), static_cast<size_t>(count * st.first));
    const std::string crc = crc32_hex(stored);
    if (f.at("crc32").string() != crc)
      f.at("crc32").fail("the tensor's bytes have CRC-32 " + crc + ", expected " + f.at("crc32").string() + " (corrupted?)");
    t.data.resize(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      uint64_t u = 0;
      for (int b = 0; b < st.first; ++b)
        u |= static_cast<uint64_t>(static_cast<unsigned char>(bytes_[static_cast<size_t>(offset + i * st.first + b)])) << (8 * b);
      int64_t v = static_cast<int64_t>(u);
      if (st.second && st.first < 8) {
        const uint64_t sign = uint64_t{1} << (8 * st.first - 1);
        v = static_cast<int64_t>(u ^ sign) - static_cast<int64_t>(sign);
      }
      t.data[static_cast<size_t>(i)] = v;
    }
    return t;
  }

 private:
  const std::string& bytes_;
};

ValueInfo read_value_info(const Field& f) {
  f.only_keys({"shape", "type", "scale"});
  ValueInfo v;
  v.shape = read_shape(f.at("shape"));
  v.type = f.at("type").int_type();
  if (f.has("scale")) v.scale = f.at("scale").numbers();
  return v;
}

std::vector<Rational> read_rationals(const Field& f) {
  std::vector<Rational> out(f.array_size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = f.at(i).rational();
  return out;
}

Requant read_requant(const Field& f) {
  Requant rq;
  const std::string form = f.at("form").string();
  rq.lo = f.at("lo").integer();
  rq.hi = f.at("hi").integer();
  if (form == "exact") {
    f.only_keys({"form", "lo", "hi", "rounding", "alpha", "delta"});
    ExactRequant e;
    e.rounding = f.at("rounding").rounding();
    e.alpha = read_rationals(f.at("alpha"));
    e.delta = read_rationals(f.at("delta"));
    rq.form = std::move(e);
  } else if (form == "mul_add_shift") {
    f.only_keys({"form", "lo", "hi", "mul", "add", "shift"});
    MulAddShiftRequant m;
    m.mul = f.at("mul").integers();
    m.add = f.at("add").integers();
    m.shift = f.at("shift").small_int();
    rq.form = std::move(m);
  } else if (form == "thresholds") {
    f.only_keys({"form", "lo", "hi", "sign", "thresholds"});
    ThresholdRequant t;
    for (int64_t s : f.at("sign").integers()) {
      if (s < -1 || s > 1) f.at("sign").fail("expected -1, 0 or 1, got " + std::to_string(s));
      t.sign.push_back(static_cast<int8_t>(s));
    }
    const Field ts = f.at("thresholds");
    for (size_t i = 0; i < ts.array_size(); ++i) t.thresholds.push_back(ts.at(i).integers());
    rq.form = std::move(t);
  } else if (form == "fixed_point") {
    f.only_keys({"form", "lo", "hi", "bias", "multiplier", "shift", "zero_point", "double_rounding"});
    FixedPointRequant p;
    p.bias = f.at("bias").integers();
    for (int64_t m : f.at("multiplier").integers()) {
      if (m < INT32_MIN || m > INT32_MAX) f.at("multiplier").fail("expected int32 multipliers, got " + std::to_string(m));
      p.multiplier.push_back(static_cast<int32_t>(m));
    }
    const Field shifts = f.at("shift");
    for (size_t i = 0; i < shifts.array_size(); ++i) p.shift.push_back(shifts.at(i).small_int());
    p.zero_point = f.at("zero_point").integer();
    p.double_rounding = f.at("double_rounding").boolean();
    rq.form = std::move(p);
  } else {
    f.at("form").fail("unknown requant form '" + form + "' (expected exact, mul_add_shift, thresholds or fixed_point)");
  }
  return rq;
}

Node read_node(const Field& f, const TensorReader& tr) {
  Node n;
  n.name = f.at("name").string();
  const std::string op = f.at("op").string();
  const auto kind = parse_op_kind(op);
  if (!kind) f.at("op").fail("unknown op '" + op + "'");
  n.inputs = f.at("inputs").strings();
  n.output = read_value_info(f.at("output"));
  switch (*kind) {
    case OpKind::input:
      f.only_keys({"name", "op", "inputs", "output"});
      n.op = InputOp{};
      break;
    case OpKind::conv2d: {
      f.only_keys({"name", "op", "inputs", "output", "weight", "bias", "stride", "padding", "pad_value", "dilation", "groups"});
      Conv2dOp c;
      c.weight = tr.read(f.at("weight"));
      if (f.has("bias")) c.bias = tr.read(f.at("bias"));
      std::tie(c.stride_h, c.stride_w) = f.at("stride").pair();
      const Field p = f.at("padding");
      if (p.array_size() != 4) p.fail("expected 4 values [top, bottom, left, right]");
      c.pad_top = p.at(0).small_int(), c.pad_bottom = p.at(1).small_int();
      c.pad_left = p.at(2).small_int(), c.pad_right = p.at(3).small_int();
      c.pad_value = f.at("pad_value").integer();
      std::tie(c.dilation_h, c.dilation_w) = f.at("dilation").pair();
      c.groups = f.at("groups").small_int();
      n.op = std::move(c);
      break;
    }
    case OpKind::linear: {
      f.only_keys({"name", "op", "inputs", "output", "weight", "bias"});
      LinearOp l;
      l.weight = tr.read(f.at("weight"));
      if (f.has("bias")) l.bias = tr.read(f.at("bias"));
      n.op = std::move(l);
      break;
    }
    case OpKind::max_pool2d: {
      f.only_keys({"name", "op", "inputs", "output", "kernel", "stride", "padding"});
      MaxPool2dOp m;
      std::tie(m.kernel_h, m.kernel_w) = f.at("kernel").pair();
      std::tie(m.stride_h, m.stride_w) = f.at("stride").pair();
      const Field p = f.at("padding");
      if (p.array_size() != 4) p.fail("expected 4 values [top, bottom, left, right]");
      m.pad_top = p.at(0).small_int(), m.pad_bottom = p.at(1).small_int();
      m.pad_left = p.at(2).small_int(), m.pad_right = p.at(3).small_int();
      n.op = m;
      break;
    }
    case OpKind::avg_pool2d: {
      f.only_keys({"name", "op", "inputs", "output", "kernel", "stride", "shift", "rounding"});
      AvgPool2dOp a;
      std::tie(a.kernel_h, a.kernel_w) = f.at("kernel").pair();
      std::tie(a.stride_h, a.stride_w) = f.at("stride").pair();
      a.shift = f.at("shift").small_int();
      a.rounding = f.at("rounding").rounding();
      n.op = a;
      break;
    }
    case OpKind::add_saturating:
      f.only_keys({"name", "op", "inputs", "output"});
      n.op = AddSaturatingOp{};
      break;
    case OpKind::add_requant: {
      f.only_keys({"name", "op", "inputs", "output", "branches"});
      AddRequantOp a;
      const Field b = f.at("branches");
      for (size_t i = 0; i < b.array_size(); ++i) a.branches.push_back(read_requant(b.at(i)));
      n.op = std::move(a);
      break;
    }
    case OpKind::hadamard: {
      f.only_keys({"name", "op", "inputs", "output", "out_features", "negate"});
      HadamardOp h;
      h.out_features = f.at("out_features").integer();
      h.negate = f.at("negate").boolean();
      n.op = h;
      break;
    }
    case OpKind::flatten:
      f.only_keys({"name", "op", "inputs", "output"});
      n.op = FlattenOp{};
      break;
    case OpKind::requant: {
      f.only_keys({"name", "op", "inputs", "output", "requant"});
      n.op = RequantOp{read_requant(f.at("requant"))};
      break;
    }
  }
  return n;
}

std::string read_file(const std::string& path, const std::string& for_file, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(for_file, what, "cannot open '" + path + "'");
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

void save_network(const Network& net, const std::string& json_path) {
  TensorWriter tw;
  json nodes = json::array();
  for (const Node& n : net.nodes) nodes.push_back(node_json(n, tw));
  const std::string bin_path = bin_path_for(json_path);
  json j;
  j["format"] = "qverify-ir";
  j["version"] = kVersion;
  j["name"] = net.name;
  j["output"] = net.output;
  json meta = json::object();
  for (const auto& [k, v] : net.metadata) meta[k] = v;
  j["metadata"] = meta;
  j["tensors"] = {{"file", fs::path(bin_path).filename().string()}, {"bytes", tw.bytes().size()}, {"crc32", crc32_hex(tw.bytes())}};
  j["nodes"] = nodes;
  // The .bin first: a reader never sees a new JSON naming tensors an old .bin lacks.
  std::string text;
  try {
    text = j.dump(2) + "\n";
  } catch (const json::type_error& e) {  // JSON text is UTF-8: a name or metadata string that is not
    throw std::invalid_argument("save_network: every name, layout and metadata string must be valid UTF-8 (" +
                                std::string(e.what()) + ")");
  }
  write_atomically(bin_path, tw.bytes());
  write_atomically(json_path, text);
}

namespace {

Network read_network(const json& j, const std::string& json_path) {
  const Field root(j, "", json_path);
  root.only_keys({"format", "version", "name", "output", "metadata", "tensors", "nodes"});
  if (root.at("format").string() != "qverify-ir") root.at("format").fail("expected \"qverify-ir\"");
  if (root.at("version").integer() != kVersion)
    root.at("version").fail("unsupported version (this qverify reads version " + std::to_string(kVersion) + ")");

  const Field tensors = root.at("tensors");
  tensors.only_keys({"file", "bytes", "crc32"});
  const std::string bin_name = tensors.at("file").string();
  if (bin_name.empty() || fs::path(bin_name).filename().string() != bin_name)
    tensors.at("file").fail("expected a file name beside the JSON file, got '" + bin_name + "'");
  const std::string bin_path = (fs::path(json_path).parent_path() / bin_name).string();
  const std::string bytes = read_file(bin_path, json_path, "tensors.file");

  Network net;
  net.name = root.at("name").string();
  net.output = root.at("output").string();
  const Field meta = root.at("metadata");
  if (!meta.raw().is_object()) meta.fail("expected an object of strings");
  for (auto it = meta.raw().begin(); it != meta.raw().end(); ++it) net.metadata[it.key()] = meta.at(it.key()).string();
  // Tensors check their own extent and CRC while nodes are read, so damage names the tensor hit; the
  // whole-file checks after them catch what lies between tensors or past the last one.
  const TensorReader tr(bytes);
  const Field nodes = root.at("nodes");
  for (size_t i = 0; i < nodes.array_size(); ++i) {
    const Field nf = nodes.at(i);
    const std::string name = nf.at("name").string();
    net.nodes.push_back(read_node(Field(nf.raw(), "nodes[" + std::to_string(i) + "] '" + name + "'", json_path), tr));
  }
  if (static_cast<int64_t>(bytes.size()) != tensors.at("bytes").integer())
    tensors.at("bytes").fail("the tensor file '" + bin_name + "' has " + std::to_string(bytes.size()) + " bytes, expected " +
                             std::to_string(tensors.at("bytes").integer()) + " (truncated or replaced?)");
  const std::string crc = crc32_hex(bytes);
  if (tensors.at("crc32").string() != crc)
    tensors.at("crc32").fail("the tensor file '" + bin_name + "' has CRC-32 " + crc + ", expected " +
                             tensors.at("crc32").string() + " (corrupted?)");
  return net;
}

}  // namespace

Network load_network(const std::string& json_path) {
  const std::string text = read_file(json_path, json_path, "");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(json_path, "byte " + std::to_string(e.byte), "not valid JSON: " + std::string(e.what()));
  } catch (const json::exception& e) {  // a number beyond double range, e.g. 1e999
    throw InputError(json_path, "", "not valid JSON: " + std::string(e.what()));
  }
  Network net;
  try {
    net = read_network(j, json_path);
  } catch (const json::exception& e) {
    // Field checks every JSON type before reading it; this only turns a missed case into an InputError.
    throw InputError(json_path, "", std::string("unexpected JSON content: ") + e.what());
  }
  validate_network(net, json_path);
  return net;
}

}  // namespace qv
