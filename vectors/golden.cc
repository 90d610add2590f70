#include "vectors/golden.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

#include "ir/crc32.h"
#include "ir/error.h"
#include "ir/rational.h"
#include "ir/requant.h"
#include "ir/value_range.h"
#include "vectors/npy.h"
#include "vectors/sha256.h"

namespace qv::vectors {

namespace fs = std::filesystem;
using json = nlohmann::json;
using qv::to_string;

std::string run_id(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "in%04lld", static_cast<long long>(index));
  return buf;
}

namespace {

std::string crc_hex(uint32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", c);
  return buf;
}

json rationals(const std::vector<Rational>& v) {
  json a = json::array();
  for (const Rational& q : v) a.push_back(to_string(q));
  return a;
}

json floats(const std::vector<Rational>& v) {
  json a = json::array();
  for (const Rational& q : v) a.push_back(to_double_nearest(q));
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
          j["alpha"] = rationals(f.alpha);
          j["delta"] = rationals(f.delta);
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

IntTensor vector_tensor(const std::vector<int64_t>& v) {
  int64_t lo = 0, hi = 0;
  if (!v.empty()) {
    lo = *std::min_element(v.begin(), v.end());
    hi = *std::max_element(v.begin(), v.end());
  }
  IntTensor t({static_cast<int64_t>(v.size())}, IntType::covering(lo, hi), "O");
  t.data = v;
  return t;
}

std::string default_layout(const IntTensor& t) {
  if (!t.layout.empty()) return t.layout;
  switch (t.rank()) {
    case 4: return "NCHW";
    case 2: return "NC";
    case 1: return "C";
    default: return "C-order";
  }
}

constexpr int64_t kMaxThresholds = 65535;

class RunEmitter {
 public:
  RunEmitter(const RunSpec& run, const EmitOptions& o, Sink& sink) : run_(run), o_(o), sink_(sink), id_(run_id(run.index)) {}

  json emit() {
    const Network& net = *run_.network;
    json nodes = json::array();
    for (const Node& n : net.nodes) nodes.push_back(node(n));
    json e;
    e["id"] = id_;
    e["index"] = run_.index;
    e["input"] = run_.input;
    e["output"] = net.output;
    e["requant_form"] = run_.requant_form;
    e["nodes"] = std::move(nodes);
    e["tensors"] = std::move(tensors_);
    e["files"] = std::move(files_);
    return e;
  }

 private:
  std::string key(const std::string& node, const std::string& role) const { return id_ + "/" + file_component(node) + "." + role; }

  void put_file(const std::string& node, const std::string& rel, const std::string& bytes, const IntTensor* values) {
    if (files_.contains(rel)) throw std::logic_error("two files named " + rel + " (node names collide after sanitizing)");
    json f;
    f["bytes"] = bytes.size();
    f["sha256"] = sha256_hex(bytes);
    f["crc32"] = crc_hex(crc32(bytes));
    files_[rel] = f;
    sink_.file(node, rel, bytes, values);
  }

  std::string put_tensor(const std::string& node, const std::string& role, IntTensor t, const json& extra) {
    t.layout = default_layout(t);
    std::string target = t.layout;
    if (o_.layout == "NHWC" && t.layout == "NCHW") target = "NHWC";
    if (o_.layout == "NHWC" && t.layout == "OIHW") target = "OHWI";
    const IntTensor u = to_layout(t, target);
    const std::string k = key(node, role);
    json d = extra;
    d["node"] = node;
    d["role"] = role;
    d["shape"] = u.shape;
    d["layout"] = u.layout;
    d["type"] = u.type.name();
    d["bits"] = u.type.bits;
    d["signed"] = u.type.is_signed;
    d["storage"] = storage_of(u.type).name();
    d["hex_word_bits"] = hex_word_bits(u.type);
    d["elements"] = u.numel();
    if (!d.contains("scale")) d["scale"] = u.scale;
    if (!d.contains("rounding")) d["rounding"] = "none";
    json fm = json::object();
    const std::string ident = c_identifier(k);
    for (Format f : o_.formats) {
      const std::string rel = k + "." + std::string(to_string(f));
      const std::string comment = "qverify golden vector " + k + ": node '" + node + "', " + role + ", shape " + to_string(u.shape) +
                                  ", layout " + u.layout + ", type " + u.type.name() + ", row-major";
      put_file(node, rel, encode(f, u, ident, comment), &u);
      fm[std::string(to_string(f))] = rel;
    }
    d["files"] = fm;
    if (tensors_.contains(k)) throw std::logic_error("two tensors named " + k);
    tensors_[k] = d;
    return k;
  }

  // One requantization in every form; integer tables also as tensors. Returns its JSON document.
  json requant(const std::string& node, const std::string& prefix, const Requant& used, const Requant* exact, IntType acc, json& node_tensors) {
    json j;
    j["lo"] = used.lo;
    j["hi"] = used.hi;
    j["channels"] = used.channels();
    j["form_used"] = std::string(to_string(used.kind()));
    j["used"] = requant_json(used);
    j["accumulator_type"] = acc.name();
    const auto [lo_big, hi_big] = type_range(acc);
    const auto lo = static_cast<int64_t>(lo_big), hi = static_cast<int64_t>(hi_big);
    j["accumulator_range"] = {lo, hi};
    if (!exact || exact->kind() != RequantForm::exact) {
      j["exact"] = {{"unavailable", "the exact lowering has no exact requantization for this node"}};
      return j;
    }
    const auto& e = std::get<ExactRequant>(exact->form);
    j["exact"] = {{"rounding", std::string(to_string(e.rounding))},
                  {"alpha", rationals(e.alpha)},
                  {"delta", rationals(e.delta)},
                  {"alpha_float", floats(e.alpha)},
                  {"delta_float", floats(e.delta)},
                  {"lo", exact->lo},
                  {"hi", exact->hi}};
    auto tensor = [&](const std::string& role, IntTensor t) {
      const std::string k = put_tensor(node, prefix + role, std::move(t), json::object());
      node_tensors[prefix + role] = k;
      return k;
    };
    try {
      const Conversion c = to_mul_add_shift(*exact, o_.mulshift_bits, lo, hi);
      const auto& m = std::get<MulAddShiftRequant>(c.requant.form);
      j["mul_add_shift"] = {{"shift", m.shift}, {"mul", m.mul}, {"add", m.add},
                            {"max_lsb_error", c.max_lsb_error}, {"max_real_error", to_string(c.max_real_error)},
                            {"mul_tensor", tensor("mul", vector_tensor(m.mul))}, {"add_tensor", tensor("add", vector_tensor(m.add))}};
    } catch (const std::invalid_argument& err) {
      j["mul_add_shift"] = {{"unavailable", err.what()}};
    }
    try {
      // hi - lo thresholds per channel: refuse the wide clamps of add branches ("no clamp").
      if (exact->hi - exact->lo > kMaxThresholds)
        throw std::invalid_argument("the clamp [" + std::to_string(exact->lo) + ", " + std::to_string(exact->hi) + "] needs more than " +
                                    std::to_string(kMaxThresholds) + " thresholds per channel");
      const Conversion c = to_thresholds(*exact, lo, hi);
      const auto& t = std::get<ThresholdRequant>(c.requant.form);
      std::vector<int64_t> sign(t.sign.begin(), t.sign.end());
      const int64_t k = t.thresholds.empty() ? 0 : static_cast<int64_t>(t.thresholds[0].size());
      std::vector<int64_t> flat;
      for (const auto& row : t.thresholds) {
        if (static_cast<int64_t>(row.size()) != k) throw std::invalid_argument("ragged threshold table");
        flat.insert(flat.end(), row.begin(), row.end());
      }
      IntTensor table = vector_tensor(flat);
      table.shape = {static_cast<int64_t>(t.thresholds.size()), k};
      table.layout = "OK";
      j["thresholds"] = {{"count_per_channel", k}, {"sign", sign},
                         {"sign_tensor", tensor("sign", vector_tensor(sign))}, {"thresholds_tensor", tensor("thresholds", table)}};
    } catch (const std::invalid_argument& err) {
      j["thresholds"] = {{"unavailable", err.what()}};
    }
    for (const bool dr : {false, true}) {
      const std::string name = dr ? "fixed_point_double" : "fixed_point_single";
      const std::string p = dr ? "fpd." : "fps.";
      try {
        const Conversion c = to_fixed_point(*exact, dr, lo, hi);
        const auto& f = std::get<FixedPointRequant>(c.requant.form);
        std::vector<int64_t> mult(f.multiplier.begin(), f.multiplier.end()), shift(f.shift.begin(), f.shift.end());
        j[name] = {{"bias", f.bias}, {"multiplier", f.multiplier}, {"shift", f.shift}, {"zero_point", f.zero_point},
                   {"double_rounding", f.double_rounding}, {"max_lsb_error", c.max_lsb_error},
                   {"max_real_error", to_string(c.max_real_error)},
                   {"bias_tensor", tensor(p + "bias", vector_tensor(f.bias))},
                   {"multiplier_tensor", tensor(p + "multiplier", vector_tensor(mult))},
                   {"shift_tensor", tensor(p + "shift", vector_tensor(shift))}};
      } catch (const std::invalid_argument& err) {
        j[name] = {{"unavailable", err.what()}};
      }
    }
    return j;
  }

  std::string rounding_of(const Node& n) const {
    const Node* x = run_.exact ? run_.exact->find(n.name) : nullptr;
    if (const auto* a = std::get_if<AvgPool2dOp>(&n.op)) return std::string(to_string(a->rounding));
    if (x) {
      if (const auto* r = std::get_if<RequantOp>(&x->op))
        if (const auto* e = std::get_if<ExactRequant>(&r->requant.form)) return std::string(to_string(e->rounding));
      if (const auto* a = std::get_if<AddRequantOp>(&x->op))
        for (const Requant& b : a->branches)
          if (const auto* e = std::get_if<ExactRequant>(&b.form)) return std::string(to_string(e->rounding));
    }
    return "none";
  }

  json node(const Node& n) {
    json j;
    j["name"] = n.name;
    j["op"] = std::string(to_string(n.kind()));
    j["inputs"] = n.inputs;
    json in_keys = json::array();
    for (const std::string& i : n.inputs) in_keys.push_back(key(i, "output"));
    j["input_tensors"] = in_keys;
    json params = json::object();
    json tens = json::object();
    const Node* exact_node = run_.exact ? run_.exact->find(n.name) : nullptr;
    std::visit(
        [&](const auto& op) {
          using T = std::decay_t<decltype(op)>;
          if constexpr (std::is_same_v<T, Conv2dOp>) {
            params = {{"stride", {op.stride_h, op.stride_w}},
                      {"padding", {op.pad_top, op.pad_bottom, op.pad_left, op.pad_right}},
                      {"pad_value", op.pad_value},
                      {"dilation", {op.dilation_h, op.dilation_w}},
                      {"groups", op.groups}};
            tens["weight"] = put_tensor(n.name, "weight", op.weight, json::object());
            if (op.bias) tens["bias"] = put_tensor(n.name, "bias", *op.bias, json::object());
          } else if constexpr (std::is_same_v<T, LinearOp>) {
            tens["weight"] = put_tensor(n.name, "weight", op.weight, json::object());
            if (op.bias) tens["bias"] = put_tensor(n.name, "bias", *op.bias, json::object());
          } else if constexpr (std::is_same_v<T, MaxPool2dOp>) {
            params = {{"kernel", {op.kernel_h, op.kernel_w}},
                      {"stride", {op.stride_h, op.stride_w}},
                      {"padding", {op.pad_top, op.pad_bottom, op.pad_left, op.pad_right}}};
          } else if constexpr (std::is_same_v<T, AvgPool2dOp>) {
            params = {{"kernel", {op.kernel_h, op.kernel_w}},
                      {"stride", {op.stride_h, op.stride_w}},
                      {"shift", op.shift},
                      {"rounding", std::string(to_string(op.rounding))}};
          } else if constexpr (std::is_same_v<T, HadamardOp>) {
            params = {{"out_features", op.out_features}, {"negate", op.negate}};
          } else if constexpr (std::is_same_v<T, RequantOp>) {
            const Requant* ex = nullptr;
            if (exact_node)
              if (const auto* r = std::get_if<RequantOp>(&exact_node->op)) ex = &r->requant;
            const Node* in = run_.network->find(n.inputs.at(0));
            json doc = requant(n.name, "rq.", op.requant, ex, in->output.type, tens);
            doc["node"] = n.name;
            params = {{"lo", op.requant.lo}, {"hi", op.requant.hi}, {"form", std::string(to_string(op.requant.kind()))}};
            j["requant_file"] = put_json(n.name, doc);
          } else if constexpr (std::is_same_v<T, AddRequantOp>) {
            const auto* ex = exact_node ? std::get_if<AddRequantOp>(&exact_node->op) : nullptr;
            json branches = json::array();
            for (size_t b = 0; b < op.branches.size(); ++b) {
              const Node* in = run_.network->find(n.inputs.at(b));
              const Requant* e = ex && b < ex->branches.size() ? &ex->branches[b] : nullptr;
              branches.push_back(requant(n.name, "b" + std::to_string(b) + ".rq.", op.branches[b], e, in->output.type, tens));
            }
            params = {{"branches", op.branches.size()}};
            j["requant_file"] = put_json(n.name, {{"node", n.name}, {"branches", branches}});
          }
        },
        n.op);
    j["params"] = params;
    const TraceEntry* t = find_entry(*run_.trace, n.name);
    if (!t) throw std::logic_error("the trace has no entry for node '" + n.name + "'");
    json extra;
    extra["rounding"] = rounding_of(n);
    extra["scale"] = t->value.scale.empty() ? n.output.scale : t->value.scale;
    if (auto g = run_.grids.find(n.name); g != run_.grids.end()) extra["grid"] = {{"scale", g->second.first}, {"offset", g->second.second}};
    IntTensor out = t->value;
    if (out.type != n.output.type) out.type = n.output.type;
    tens["output"] = put_tensor(n.name, "output", out, extra);
    j["tensors"] = tens;
    return j;
  }

  std::string put_json(const std::string& node, const json& doc) {
    const std::string rel = key(node, "requant.json");
    put_file(node, rel, doc.dump(2) + "\n", nullptr);
    return rel;
  }

  const RunSpec& run_;
  const EmitOptions& o_;
  Sink& sink_;
  std::string id_;
  json tensors_ = json::object();
  json files_ = json::object();
};

const std::string kSelfKey = "\"manifest_sha256\": \"";

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "", "cannot open file");
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

json emit_run(const RunSpec& run, const EmitOptions& options, Sink& sink) {
  if (!run.network || !run.trace) throw std::logic_error("emit_run: no network or trace");
  return RunEmitter(run, options, sink).emit();
}

std::string finish_manifest(json m) {
  m["manifest_sha256"] = std::string(64, '0');
  std::string s = m.dump(2) + "\n";
  const std::string h = sha256_hex(s);
  const size_t at = s.find(kSelfKey + std::string(64, '0'));
  if (at == std::string::npos) throw std::logic_error("manifest_sha256 placeholder not found");
  s.replace(at + kSelfKey.size(), 64, h);
  return s;
}

std::string manifest_self_hash(const std::string& bytes) {
  const size_t at = bytes.find(kSelfKey);
  if (at == std::string::npos || at + kSelfKey.size() + 64 > bytes.size()) return "";
  std::string s = bytes;
  s.replace(at + kSelfKey.size(), 64, std::string(64, '0'));
  return sha256_hex(s);
}

namespace {

struct Schema {
  std::string file;
  const json& need(const json& j, const std::string& key, const std::string& where, json::value_t type) const {
    const std::string name = where.empty() ? key : where + "." + key;
    if (!j.is_object() || !j.contains(key)) throw InputError(file, "key '" + name + "'", "missing");
    const json& v = j.at(key);
    const bool ok = v.type() == type || (type == json::value_t::number_integer && v.is_number_unsigned());
    if (!ok) throw InputError(file, "key '" + name + "'", std::string("expected a ") + json(type).type_name() + ", found " + v.type_name());
    return v;
  }
};

}  // namespace

json load_manifest(const std::string& dir, std::string* bytes_out) {
  const std::string path = (fs::path(dir) / kManifestName).string();
  if (!fs::is_directory(dir)) throw InputError(dir, "", "not a directory");
  if (!fs::exists(path)) throw InputError(path, "", "missing: not a golden-vector directory");
  const std::string bytes = read_all(path);
  json m;
  try {
    m = json::parse(bytes);
  } catch (const json::parse_error& e) {
    throw InputError(path, "", std::string("not valid JSON: ") + e.what());
  }
  using V = json::value_t;
  const Schema s{path};
  if (!m.is_object()) throw InputError(path, "", "expected a JSON object");
  if (s.need(m, "format", "", V::string) != kFormatName) throw InputError(path, "key 'format'", std::string("expected \"") + kFormatName + "\"");
  if (s.need(m, "version", "", V::number_integer) != kFormatVersion) throw InputError(path, "key 'version'", "unsupported version");
  s.need(m, "tool", "", V::object);
  s.need(m, "model", "", V::string);
  const json& c = s.need(m, "config", "", V::object);
  s.need(c, "name", "config", V::string);
  s.need(c, "file", "config", V::string);
  s.need(c, "sha256", "config", V::string);
  s.need(m, "seed", "", V::number_integer);
  s.need(m, "resolution", "", V::number_integer);
  s.need(m, "width_mult", "", V::number_float);
  s.need(m, "requant", "", V::string);
  s.need(m, "layout", "", V::string);
  s.need(m, "formats", "", V::array);
  s.need(m, "inputs", "", V::array);
  s.need(m, "manifest_sha256", "", V::string);
  const json& runs = s.need(m, "runs", "", V::array);
  for (size_t r = 0; r < runs.size(); ++r) {
    const std::string w = "runs[" + std::to_string(r) + "]";
    const json& run = runs[r];
    s.need(run, "id", w, V::string);
    s.need(run, "index", w, V::number_integer);
    s.need(run, "input", w, V::object);
    s.need(run, "output", w, V::string);
    const json& nodes = s.need(run, "nodes", w, V::array);
    for (size_t i = 0; i < nodes.size(); ++i) {
      const std::string wn = w + ".nodes[" + std::to_string(i) + "]";
      s.need(nodes[i], "name", wn, V::string);
      s.need(nodes[i], "op", wn, V::string);
      s.need(nodes[i], "inputs", wn, V::array);
      s.need(nodes[i], "tensors", wn, V::object);
    }
    for (const auto& [k, t] : s.need(run, "tensors", w, V::object).items()) {
      const std::string wt = w + ".tensors[\"" + k + "\"]";
      s.need(t, "shape", wt, V::array);
      s.need(t, "layout", wt, V::string);
      s.need(t, "type", wt, V::string);
      s.need(t, "files", wt, V::object);
    }
    for (const auto& [k, f] : s.need(run, "files", w, V::object).items()) {
      const std::string wf = w + ".files[\"" + k + "\"]";
      s.need(f, "bytes", wf, V::number_integer);
      s.need(f, "sha256", wf, V::string);
      s.need(f, "crc32", wf, V::string);
    }
  }
  if (bytes_out) *bytes_out = bytes;
  return m;
}

std::vector<Problem> verify_checksums(const std::string& dir, const json& m, const std::string& manifest_bytes) {
  std::vector<Problem> out;
  const std::string self = manifest_self_hash(manifest_bytes);
  if (self != m.at("manifest_sha256").get<std::string>())
    out.push_back({kManifestName, "edited: the manifest's own SHA-256 (with manifest_sha256 zeroed) is " + self + ", it records " +
                                      m.at("manifest_sha256").get<std::string>()});
  std::set<std::string> listed;
  for (const json& run : m.at("runs")) {
    for (const auto& [rel, f] : run.at("files").items()) {
      listed.insert(rel);
      const fs::path p(rel);
      bool unsafe = p.is_absolute() || rel.empty();
      for (const auto& part : p) unsafe = unsafe || part == ".." || part == ".";
      if (unsafe) {
        out.push_back({rel, "unsafe path in the manifest"});
        continue;
      }
      const fs::path full = fs::path(dir) / p;
      if (!fs::is_regular_file(full)) {
        out.push_back({rel, "missing"});
        continue;
      }
      const std::string bytes = read_all(full.string());
      if (bytes.size() != f.at("bytes").get<uint64_t>()) {
        out.push_back({rel, "size " + std::to_string(bytes.size()) + " bytes, the manifest records " + f.at("bytes").dump()});
        continue;
      }
      const std::string sha = sha256_hex(bytes);
      if (sha != f.at("sha256").get<std::string>()) {
        out.push_back({rel, "SHA-256 " + sha + ", the manifest records " + f.at("sha256").get<std::string>()});
        continue;
      }
      const std::string crc = crc_hex(crc32(bytes));
      if (crc != f.at("crc32").get<std::string>())
        out.push_back({rel, "CRC-32 " + crc + ", the manifest records " + f.at("crc32").get<std::string>()});
    }
  }
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_directory()) continue;
    const std::string rel = fs::relative(e.path(), dir).generic_string();
    if (rel == kManifestName || listed.count(rel)) continue;
    out.push_back({rel, "not listed in the manifest (unknown file)"});
  }
  std::sort(out.begin(), out.end(), [](const Problem& a, const Problem& b) { return a.file < b.file; });
  return out;
}

json manifest_header(const json& m) {
  json h = m;
  h.erase("runs");
  h.erase("shard");
  h.erase("manifest_sha256");
  return h;
}

}  // namespace qv::vectors
