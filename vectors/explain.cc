#include "vectors/explain.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "ir/error.h"
#include "ir/int_type.h"
#include "vectors/npy.h"

namespace qv::vectors {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "", "cannot open file (expected a tensor file)");
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

Shape shape_of(const json& entry) {
  Shape s;
  for (const json& d : entry.at("shape")) s.push_back(d.get<int64_t>());
  return s;
}

IntType type_of(const json& entry, const std::string& file) {
  const auto t = IntType::parse(entry.at("type").get<std::string>());
  if (!t) throw InputError(file, "type", "bad type in the manifest");
  return *t;
}

std::string canonical_layout(const std::string& l) {
  if (l == "NHWC") return "NCHW";
  if (l == "OHWI") return "OIHW";
  return l;
}

bool is_hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::string shape_text(const Shape& s) { return index_string(s); }

}  // namespace

std::vector<int64_t> unflatten(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  return idx;
}

int64_t flatten_index(const Shape& shape, const std::vector<int64_t>& index) {
  int64_t f = 0;
  for (size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + index[d];
  return f;
}

std::string index_string(const std::vector<int64_t>& index) {
  std::string s = "[";
  for (size_t d = 0; d < index.size(); ++d) s += (d ? ", " : "") + std::to_string(index[d]);
  return s + "]";
}

Shape permute_shape(const Shape& s, const std::string& from) {
  if (s.size() != 4) return s;
  if (from == "NHWC" || from == "OHWI") return {s[0], s[3], s[1], s[2]};
  return {s[0], s[2], s[3], s[1]};  // NCHW -> NHWC
}

std::vector<int64_t> permute_layout(const std::vector<int64_t>& data, const Shape& s, const std::string& from) {
  if (s.size() != 4) return data;
  std::vector<int64_t> out(data.size());
  const bool to_first = from == "NHWC" || from == "OHWI";  // channels-last -> channels-first
  const int64_t N = s[0];
  // Work in terms of (n, c, h, w).
  const int64_t C = to_first ? s[3] : s[1], H = to_first ? s[1] : s[2], W = to_first ? s[2] : s[3];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          const size_t first = static_cast<size_t>(((n * C + c) * H + h) * W + w);
          const size_t last = static_cast<size_t>(((n * H + h) * W + w) * C + c);
          if (to_first) out[first] = data[last];
          else out[last] = data[first];
        }
  return out;
}

Rational parse_rational(const std::string& s, const std::string& file, const std::string& where) {
  try {
    const size_t slash = s.find('/');
    if (slash == std::string::npos) return Rational(BigInt(s));
    const BigInt den(s.substr(slash + 1));
    if (den == 0) throw std::invalid_argument("zero denominator");
    return Rational(BigInt(s.substr(0, slash)), den);
  } catch (const std::exception&) {
    throw InputError(file, where, "expected an exact rational \"p/q\", got \"" + s + "\"");
  }
}

std::string rational_string(const Rational& r) {
  const BigInt n = boost::multiprecision::numerator(r), d = boost::multiprecision::denominator(r);
  return d == 1 ? n.str() : n.str() + "/" + d.str();
}

std::string decimal_string(const Rational& r) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.12g", r.convert_to<double>());
  return buf;
}

std::vector<int64_t> read_tensor_file(Format f, const std::string& path, const json& tensor, bool* permuted_shape) {
  if (permuted_shape) *permuted_shape = false;
  const IntType type = type_of(tensor, path);
  const Shape shape = shape_of(tensor);
  const int64_t elements = element_count(shape);
  const std::string layout = tensor.value("layout", "");
  auto count_error = [&](int64_t got, const std::string& unit) {
    return InputError(path, "", std::to_string(got) + " " + unit + ", expected " + std::to_string(elements) + " elements (shape " +
                                    shape_text(shape) + " " + layout + ", " + type.name() + ")");
  };
  if (!fs::is_regular_file(path)) throw InputError(path, "", "missing file (expected " + shape_text(shape) + " " + layout + ")");
  switch (f) {
    case Format::npy: {
      IntTensor t = read_npy(path);
      if (t.shape != shape) {
        if (shape.size() == 4 && t.shape == permute_shape(shape, layout)) {
          if (permuted_shape) *permuted_shape = true;
        } else {
          throw InputError(path, "shape", "shape " + shape_text(t.shape) + ", expected " + shape_text(shape) + " (" + layout + ")");
        }
      }
      return std::move(t.data);
    }
    case Format::bin: {
      const std::string bytes = read_bytes(path);
      const Storage s = storage_of(type);
      if (bytes.size() != static_cast<size_t>(elements) * static_cast<size_t>(s.bytes))
        throw InputError(path, "", std::to_string(bytes.size()) + " bytes, expected " + std::to_string(elements * s.bytes) + " (" +
                                       std::to_string(elements) + " elements of " + s.name() + ", shape " + shape_text(shape) + ")");
      std::vector<int64_t> out;
      out.reserve(static_cast<size_t>(elements));
      for (size_t i = 0; i < bytes.size(); i += static_cast<size_t>(s.bytes)) {
        uint64_t u = 0;
        for (int b = 0; b < s.bytes; ++b) u |= uint64_t{static_cast<unsigned char>(bytes[i + static_cast<size_t>(b)])} << (8 * b);
        if (s.is_signed && s.bytes < 8 && (u >> (8 * s.bytes - 1)) & 1) u |= ~uint64_t{0} << (8 * s.bytes);
        out.push_back(static_cast<int64_t>(u));
      }
      return out;
    }
    case Format::hex: {
      const std::string bytes = read_bytes(path);
      const int width = hex_word_bits(type);
      const size_t digits = static_cast<size_t>(width / 4);
      std::vector<int64_t> out;
      size_t at = 0;
      int64_t line = 0;
      while (at < bytes.size()) {
        const size_t nl = bytes.find('\n', at);
        std::string w = bytes.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        at = nl == std::string::npos ? bytes.size() : nl + 1;
        ++line;
        while (!w.empty() && (w.back() == '\r' || w.back() == ' ' || w.back() == '\t')) w.pop_back();
        if (const size_t c = w.find("//"); c != std::string::npos) w.erase(c);
        while (!w.empty() && (w.back() == ' ' || w.back() == '\t')) w.pop_back();
        std::erase(w, '_');  // Verilog digit separators
        if (w.empty()) continue;
        for (char ch : w)
          if (!is_hex_digit(ch))
            throw InputError(path, "line " + std::to_string(line), "\"" + w + "\" is not a hex word (expected " + std::to_string(digits) +
                                                                     " hex digits, $readmemh without address markers)");
        size_t first = 0;
        while (first + 1 < w.size() && w[first] == '0') ++first;
        if (w.size() - first > digits)
          throw InputError(path, "line " + std::to_string(line),
                           "word \"" + w + "\" is wider than the stated " + std::to_string(width) + "-bit word (" + type.name() + ")");
        uint64_t u = std::stoull(w.substr(first), nullptr, 16);
        if (type.is_signed && width < 64 && (u >> (width - 1)) & 1) u |= ~uint64_t{0} << width;
        out.push_back(static_cast<int64_t>(u));
      }
      if (static_cast<int64_t>(out.size()) != elements) throw count_error(static_cast<int64_t>(out.size()), "words");
      return out;
    }
    case Format::csv: {
      const std::string bytes = read_bytes(path);
      std::vector<int64_t> out;
      size_t at = 0;
      int64_t line = 0;
      size_t row_length = 0;
      while (at < bytes.size()) {
        const size_t nl = bytes.find('\n', at);
        std::string l = bytes.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        at = nl == std::string::npos ? bytes.size() : nl + 1;
        ++line;
        if (!l.empty() && l.back() == '\r') l.pop_back();
        if (l.empty()) continue;
        size_t fields = 0, start = 0;
        while (true) {
          const size_t comma = l.find(',', start);
          std::string field = l.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          while (!field.empty() && field.front() == ' ') field.erase(field.begin());
          while (!field.empty() && field.back() == ' ') field.pop_back();
          ++fields;
          bool ok = !field.empty();
          for (size_t i = 0; i < field.size() && ok; ++i) ok = (field[i] >= '0' && field[i] <= '9') || (i == 0 && field[i] == '-' && field.size() > 1);
          if (!ok || field.size() > 19)
            throw InputError(path, "line " + std::to_string(line) + ", field " + std::to_string(fields),
                             "\"" + field + "\" is not a decimal integer (expected -?[0-9]+)");
          out.push_back(std::stoll(field));
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
        if (row_length == 0) row_length = fields;
        else if (fields != row_length)
          throw InputError(path, "line " + std::to_string(line),
                           std::to_string(fields) + " fields, the lines before have " + std::to_string(row_length));
      }
      if (static_cast<int64_t>(out.size()) != elements) throw count_error(static_cast<int64_t>(out.size()), "values");
      return out;
    }
    case Format::h: break;
  }
  throw InputError(path, "", "C headers are not read back; use npy, hex, csv or bin");
}

// ---- GoldenRun ----

GoldenRun::GoldenRun(std::string dir, json manifest, size_t run_position) : dir_(std::move(dir)), manifest_(std::move(manifest)) {
  run_ = manifest_.at("runs").at(run_position);
  id_ = run_.at("id").get<std::string>();
  for (const json& n : run_.at("nodes")) {
    node_pos_[n.at("name").get<std::string>()] = order_.size();
    order_.push_back(n.at("name").get<std::string>());
  }
}

const json& GoldenRun::node(const std::string& name) const {
  const auto it = node_pos_.find(name);
  if (it == node_pos_.end()) {
    std::string some;
    for (size_t i = 0; i < order_.size() && i < 6; ++i) some += (i ? ", " : "") + order_[i];
    throw InputError((fs::path(dir_) / "manifest.json").string(), "run " + id_,
                     "no node '" + name + "' (nodes: " + some + (order_.size() > 6 ? ", ..." : "") + ")");
  }
  return run_.at("nodes").at(it->second);
}

std::string GoldenRun::node_tensor(const std::string& name, const std::string& role) const {
  const json& t = node(name).at("tensors");
  return t.contains(role) ? t.at(role).get<std::string>() : "";
}

const json& GoldenRun::tensor_entry(const std::string& key) const {
  const json& ts = run_.at("tensors");
  if (!ts.contains(key)) throw InputError((fs::path(dir_) / "manifest.json").string(), "run " + id_, "no tensor '" + key + "'");
  return ts.at(key);
}

const json& GoldenRun::output_entry(const std::string& n) const { return tensor_entry(node_tensor(n, "output")); }

std::vector<int64_t> GoldenRun::stated_data(const std::string& key) {
  const json& e = tensor_entry(key);
  const json& files = e.at("files");
  for (const Format f : {Format::npy, Format::bin, Format::hex, Format::csv}) {
    const std::string ext(to_string(f));
    if (files.contains(ext)) return read_tensor_file(f, (fs::path(dir_) / files.at(ext).get<std::string>()).string(), e);
  }
  throw InputError((fs::path(dir_) / "manifest.json").string(), "tensor " + key, "no file in a readable format (npy, bin, hex, csv)");
}

const IntTensor& GoldenRun::canonical(const std::string& key) {
  if (auto it = cache_.find(key); it != cache_.end()) return *it->second;
  const json& e = tensor_entry(key);
  auto t = std::make_unique<IntTensor>();
  const std::string layout = e.value("layout", "");
  t->shape = shape_of(e);
  t->type = type_of(e, key);
  t->data = stated_data(key);
  if (canonical_layout(layout) != layout) {
    t->data = permute_layout(t->data, t->shape, layout);
    t->shape = permute_shape(t->shape, layout);
  }
  t->layout = canonical_layout(layout);
  return *(cache_[key] = std::move(t));
}

const json& GoldenRun::requant_file(const std::string& n) {
  if (auto it = requant_cache_.find(n); it != requant_cache_.end()) return it->second;
  const json& nd = node(n);
  if (!nd.contains("requant_file")) throw InputError((fs::path(dir_) / "manifest.json").string(), "node " + n, "no requant_file");
  const std::string path = (fs::path(dir_) / nd.at("requant_file").get<std::string>()).string();
  json j;
  try {
    j = json::parse(read_bytes(path));
  } catch (const json::exception& e) {
    throw InputError(path, "", std::string("not valid JSON: ") + e.what());
  }
  return requant_cache_[n] = std::move(j);
}

std::vector<int64_t> GoldenRun::to_canonical_index(const json& entry, const std::vector<int64_t>& s) {
  const std::string l = entry.value("layout", "");
  if (s.size() == 4 && (l == "NHWC" || l == "OHWI")) return {s[0], s[3], s[1], s[2]};
  return s;
}

std::vector<int64_t> GoldenRun::to_stated_index(const json& entry, const std::vector<int64_t>& c) {
  const std::string l = entry.value("layout", "");
  if (c.size() == 4 && (l == "NHWC" || l == "OHWI")) return {c[0], c[2], c[3], c[1]};
  return c;
}

// ---- Element computation ----

namespace {

int64_t at(const IntTensor& t, const std::vector<int64_t>& idx) { return t.data[static_cast<size_t>(flatten_index(t.shape, idx))]; }

struct RequantTable {
  std::vector<std::string> alpha, delta;
  Rounding rounding;
  int64_t lo, hi;
};

RequantTable requant_table(const json& rq, const std::string& file, const std::string& where) {
  try {
    const json& ex = rq.at("exact");
    RequantTable t;
    t.alpha = ex.at("alpha").get<std::vector<std::string>>();
    t.delta = ex.at("delta").get<std::vector<std::string>>();
    const auto r = parse_rounding(ex.at("rounding").get<std::string>());
    if (!r) throw InputError(file, where + "exact.rounding", "unknown rounding");
    t.rounding = *r;
    t.lo = ex.at("lo").get<int64_t>();
    t.hi = ex.at("hi").get<int64_t>();
    return t;
  } catch (const json::exception& e) {
    throw InputError(file, where + "exact", std::string("malformed requantization: ") + e.what());
  }
}

RequantStep requant_step(const RequantTable& t, const std::string& input, int64_t channel, int64_t acc, const std::string& file) {
  RequantStep s;
  s.input_node = input;
  s.channel = channel;
  s.acc = acc;
  const size_t c = t.alpha.size() == 1 ? 0 : static_cast<size_t>(channel);
  if (c >= t.alpha.size() || c >= t.delta.size()) throw InputError(file, "exact.alpha", "fewer channels than the tensor");
  s.alpha = t.alpha[c];
  s.delta = t.delta[c];
  s.p = parse_rational(s.alpha, file, "exact.alpha") * Rational(acc) + parse_rational(s.delta, file, "exact.delta");
  s.rounding = t.rounding;
  s.lo = t.lo;
  s.hi = t.hi;
  s.rounded = round_rational(s.p, s.rounding);
  s.clamped = s.rounded < s.lo ? s.lo : s.rounded > s.hi ? s.hi : static_cast<int64_t>(s.rounded);
  s.tie = boost::multiprecision::denominator(s.p) == 2;
  return s;
}

std::vector<int64_t> p4(const json& params, const char* key, std::vector<int64_t> dflt) {
  if (!params.contains(key)) return dflt;
  const json& v = params.at(key);
  if (v.is_number()) return std::vector<int64_t>(dflt.size(), v.get<int64_t>());
  return v.get<std::vector<int64_t>>();
}

void accumulate(GoldenRun& run, const std::string& node, const std::vector<int64_t>& ci, ElementComputation& e) {
  const json& nd = run.node(node);
  const std::string op = nd.at("op").get<std::string>();
  const json params = nd.value("params", json::object());
  const std::vector<std::string> inputs = nd.value("inputs", std::vector<std::string>{});
  const json& out_entry = run.output_entry(node);
  e.acc_node = node;
  e.acc_op = op;
  e.acc_params = params;
  e.acc_index = GoldenRun::to_stated_index(out_entry, ci);
  e.acc_golden = at(run.output(node), ci);
  if (op == "conv2d") {
    const IntTensor& x = run.output(inputs.at(0));
    const IntTensor& w = run.canonical(run.node_tensor(node, "weight"));
    const auto stride = p4(params, "stride", {1, 1}), pad = p4(params, "padding", {0, 0, 0, 0}), dil = p4(params, "dilation", {1, 1});
    const int64_t groups = params.value("groups", int64_t{1}), pad_value = params.value("pad_value", int64_t{0});
    const int64_t O = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3];
    const int64_t n = ci[0], o = ci[1], h = ci[2], wo = ci[3];
    const int64_t g = o / (O / groups);
    BigInt acc = 0;
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw) {
          Term t;
          const int64_t ih = h * stride[0] - pad[0] + kh * dil[0], iw = wo * stride[1] - pad[2] + kw * dil[1];
          const int64_t ic = g * Cg + c;
          t.index = {n, ic, ih, iw};
          t.padding = ih < 0 || iw < 0 || ih >= x.shape[2] || iw >= x.shape[3];
          t.source = t.padding ? "" : inputs[0];
          t.x = t.padding ? pad_value : x.at(n, ic, ih, iw);
          t.weight_index = {o, c, kh, kw};
          t.w = w.at(o, c, kh, kw);
          acc += BigInt(t.x) * t.w;
          e.terms.push_back(std::move(t));
        }
    if (const std::string b = run.node_tensor(node, "bias"); !b.empty()) {
      e.bias = run.canonical(b).data.at(static_cast<size_t>(o));
      acc += *e.bias;
    }
    e.acc_recomputed = acc;
    e.combine = "sum";
  } else if (op == "linear") {
    const IntTensor& x = run.output(inputs.at(0));
    const IntTensor& w = run.canonical(run.node_tensor(node, "weight"));
    const int64_t n = ci[0], o = ci[1];
    BigInt acc = 0;
    for (int64_t i = 0; i < w.shape[1]; ++i) {
      Term t;
      t.source = inputs[0];
      t.index = {n, i};
      t.x = x.at(n, i);
      t.weight_index = {o, i};
      t.w = w.at(o, i);
      acc += BigInt(t.x) * t.w;
      e.terms.push_back(std::move(t));
    }
    if (const std::string b = run.node_tensor(node, "bias"); !b.empty()) {
      e.bias = run.canonical(b).data.at(static_cast<size_t>(o));
      acc += *e.bias;
    }
    e.acc_recomputed = acc;
    e.combine = "sum";
  } else if (op == "max_pool2d" || op == "avg_pool2d") {
    const IntTensor& x = run.output(inputs.at(0));
    const auto k = p4(params, "kernel", {2, 2}), stride = p4(params, "stride", {2, 2}), pad = p4(params, "padding", {0, 0, 0, 0});
    BigInt sum = 0;
    std::optional<int64_t> mx;
    for (int64_t kh = 0; kh < k[0]; ++kh)
      for (int64_t kw = 0; kw < k[1]; ++kw) {
        const int64_t ih = ci[2] * stride[0] - pad[0] + kh, iw = ci[3] * stride[1] - pad[2] + kw;
        if (ih < 0 || iw < 0 || ih >= x.shape[2] || iw >= x.shape[3]) continue;  // padding never wins, no padding in avg
        Term t;
        t.source = inputs[0];
        t.index = {ci[0], ci[1], ih, iw};
        t.x = x.at(ci[0], ci[1], ih, iw);
        sum += t.x;
        mx = mx ? std::max(*mx, t.x) : t.x;
        e.terms.push_back(std::move(t));
      }
    if (op == "max_pool2d") {
      e.combine = "max";
      e.acc_recomputed = BigInt(mx.value_or(0));
    } else {
      e.combine = "avg";
      const int64_t shift = params.value("shift", int64_t{0});
      e.pool_p = Rational(sum, BigInt(1) << static_cast<unsigned>(shift));
      e.pool_rounding = params.value("rounding", "floor");
      const auto r = parse_rounding(e.pool_rounding).value_or(Rounding::floor);
      BigInt v = round_rational(*e.pool_p, r);
      v = v < e.out_lo ? BigInt(e.out_lo) : v > e.out_hi ? BigInt(e.out_hi) : v;
      e.acc_recomputed = v;
    }
  } else if (op == "flatten") {
    const IntTensor& x = run.output(inputs.at(0));
    Term t;
    t.source = inputs[0];
    t.index = unflatten(x.shape, ci[1] + ci[0] * (x.numel() / std::max<int64_t>(1, x.shape[0])));
    t.x = at(x, t.index);
    e.acc_recomputed = BigInt(t.x);
    e.terms.push_back(std::move(t));
    e.combine = "copy";
  } else if (op == "hadamard") {
    const IntTensor& x = run.output(inputs.at(0));
    const bool neg = params.value("negate", false);
    BigInt acc = 0;
    for (int64_t j = 0; j < x.shape[1]; ++j) {
      Term t;
      t.source = inputs[0];
      t.index = {ci[0], j};
      t.x = x.at(ci[0], j);
      t.w = (__builtin_popcountll(static_cast<unsigned long long>(ci[1] & j)) % 2 ? -1 : 1) * (neg ? -1 : 1);
      acc += BigInt(t.x) * t.w;
      e.terms.push_back(std::move(t));
    }
    e.acc_recomputed = acc;
    e.combine = "sum";
  } else if (op == "add_saturating") {
    BigInt acc = 0;
    for (const std::string& in : inputs) {
      Term t;
      t.source = in;
      t.index = ci;
      t.x = at(run.output(in), ci);
      acc += t.x;
      e.terms.push_back(std::move(t));
    }
    e.acc_recomputed = acc < e.out_lo ? BigInt(e.out_lo) : acc > e.out_hi ? BigInt(e.out_hi) : acc;
    e.combine = "sum";
  } else {
    e.combine = "none";
  }
}

}  // namespace

ElementComputation compute_element(GoldenRun& run, const std::string& node, const std::vector<int64_t>& ci) {
  ElementComputation e;
  const json& nd = run.node(node);
  e.node = node;
  e.op = nd.at("op").get<std::string>();
  const json& out_entry = run.output_entry(node);
  const IntTensor& out = run.output(node);
  if (ci.size() != out.shape.size()) throw InputError(node, "index", "rank " + std::to_string(ci.size()) + ", expected " + std::to_string(out.shape.size()));
  for (size_t d = 0; d < ci.size(); ++d)
    if (ci[d] < 0 || ci[d] >= out.shape[d])
      throw InputError(node, "index", index_string(GoldenRun::to_stated_index(out_entry, ci)) + " outside the shape " +
                                          index_string(GoldenRun::to_stated_index(out_entry, out.shape)) + " (" +
                                          out_entry.value("layout", "") + ")");
  e.canonical_index = ci;
  e.index = GoldenRun::to_stated_index(out_entry, ci);
  e.output = at(out, ci);
  e.out_lo = out.type.min();
  e.out_hi = out.type.max();
  const std::vector<std::string> inputs = nd.value("inputs", std::vector<std::string>{});
  const std::string rq_path = nd.contains("requant_file") ? (fs::path(run.dir()) / nd.at("requant_file").get<std::string>()).string() : node;
  const int64_t channel = ci.size() >= 2 ? ci[1] : 0;
  if (e.op == "requant") {
    const std::string in = inputs.at(0);
    const RequantTable t = requant_table(run.requant_file(node), rq_path, "");
    e.requant.push_back(requant_step(t, in, channel, at(run.output(in), ci), rq_path));
    const std::string in_op = run.node(in).at("op").get<std::string>();
    if (in_op == "conv2d" || in_op == "linear" || in_op == "hadamard") accumulate(run, in, ci, e);
    else {
      e.acc_node = in;
      e.acc_op = in_op;
      e.acc_index = GoldenRun::to_stated_index(run.output_entry(in), ci);
      e.acc_golden = e.requant[0].acc;
      e.combine = "none";
    }
  } else if (e.op == "add_requant") {
    const json& f = run.requant_file(node);
    if (!f.contains("branches") || f.at("branches").size() != inputs.size())
      throw InputError(rq_path, "branches", "expected one requantization per input (" + std::to_string(inputs.size()) + ")");
    for (size_t b = 0; b < inputs.size(); ++b) {
      const RequantTable t = requant_table(f.at("branches").at(b), rq_path, "branches[" + std::to_string(b) + "].");
      e.requant.push_back(requant_step(t, inputs[b], channel, at(run.output(inputs[b]), ci), rq_path));
    }
    e.combine = "sum";
  } else if (e.op == "input") {
    e.combine = "none";
    e.note = "the network input";
  } else {
    accumulate(run, node, ci, e);
  }
  return e;
}

std::optional<Term> ElementComputation::largest() const {
  if (!requant.empty() && terms.empty()) {
    // add_requant (or a requant of a non-window op): the branch with the largest |requant_i|.
    std::optional<Term> best;
    BigInt best_v = -1;
    for (const RequantStep& s : requant) {
      const BigInt v = s.rounded < 0 ? BigInt(-s.rounded) : s.rounded;
      if (v > best_v) {
        best_v = v;
        Term t;
        t.source = s.input_node;
        t.index = canonical_index;
        t.x = s.acc;
        best = t;
      }
    }
    return best;
  }
  std::optional<Term> best;
  BigInt best_v = -1;
  for (const Term& t : terms) {
    if (t.padding || t.source.empty()) continue;
    BigInt v = BigInt(t.x) * t.w;
    if (v < 0) v = -v;
    if (v > best_v) {
      best_v = v;
      best = t;
    }
  }
  return best;
}

json ElementComputation::to_json() const {
  json j;
  j["node"] = node;
  j["op"] = op;
  j["index"] = index;
  j["output"] = output;
  if (!acc_node.empty()) {
    json a;
    a["node"] = acc_node;
    a["op"] = acc_op;
    a["params"] = acc_params;
    a["index"] = acc_index;
    if (acc_golden) a["golden"] = *acc_golden;
    if (acc_recomputed) {
      a["recomputed"] = acc_recomputed->str();
      if (acc_golden) a["matches_golden"] = *acc_recomputed == *acc_golden;
    }
    if (bias) a["bias"] = *bias;
    a["combine"] = combine;
    json ts = json::array();
    for (const Term& t : terms) {
      json tj = {{"source", t.source}, {"index", t.index}, {"x", t.x}, {"padding", t.padding}};
      if (!t.weight_index.empty()) tj["weight_index"] = t.weight_index;
      tj["w"] = t.w;
      ts.push_back(std::move(tj));
    }
    a["terms"] = std::move(ts);
    if (pool_p) {
      a["p"] = rational_string(*pool_p);
      a["p_decimal"] = decimal_string(*pool_p);
      a["rounding"] = pool_rounding;
      a["clamp"] = {out_lo, out_hi};
    }
    j["accumulation"] = std::move(a);
  }
  json rqs = json::array();
  for (const RequantStep& s : requant) {
    rqs.push_back({{"input", s.input_node},
                   {"channel", s.channel},
                   {"acc", s.acc},
                   {"alpha", s.alpha},
                   {"delta", s.delta},
                   {"p", rational_string(s.p)},
                   {"p_decimal", decimal_string(s.p)},
                   {"tie", s.tie},
                   {"rounding", std::string(to_string(s.rounding))},
                   {"rounded", s.rounded.str()},
                   {"clamp", {s.lo, s.hi}},
                   {"clamped", s.clamped}});
  }
  if (!requant.empty()) j["requant"] = std::move(rqs);
  if (op == "add_requant") j["clamp"] = {out_lo, out_hi};
  if (!note.empty()) j["note"] = note;
  return j;
}

std::string ElementComputation::to_text(size_t max_terms, const std::string& ind) const {
  std::ostringstream o;
  o << ind << node << " " << index_string(index) << " (" << op << ") = " << output << "\n";
  if (!acc_node.empty()) {
    const bool self = acc_node == node;
    o << ind << "  " << (self ? "computation" : "accumulator") << ": " << acc_node << " " << index_string(acc_index) << " (" << acc_op;
    if (!acc_params.empty()) o << " " << acc_params.dump();
    o << ")";
    if (acc_golden) o << " = " << *acc_golden;
    o << "\n";
    if (!terms.empty()) {
      const std::string src = terms.front().source.empty() ? "" : terms.front().source;
      if (combine == "sum")
        o << ind << "    = " << (bias ? "bias " + std::to_string(*bias) + " + " : "") << "sum of " << terms.size() << " terms x * w, x from "
          << (src.empty() ? "the padding" : src) << ":\n";
      else if (combine == "max") o << ind << "    = max of " << terms.size() << " inputs from " << src << ":\n";
      else if (combine == "avg") o << ind << "    window sum of " << terms.size() << " inputs from " << src << ":\n";
      else if (combine == "copy") o << ind << "    = copy of:\n";
      std::vector<size_t> order(terms.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      const bool cut = terms.size() > max_terms;
      if (cut) {
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
          BigInt va = BigInt(terms[a].x) * terms[a].w, vb = BigInt(terms[b].x) * terms[b].w;
          if (va < 0) va = -va;
          if (vb < 0) vb = -vb;
          return va > vb;
        });
        order.resize(max_terms);
        o << ind << "      (the " << max_terms << " largest |x * w| of " << terms.size() << "; --json lists all)\n";
      }
      for (size_t i : order) {
        const Term& t = terms[i];
        o << ind << "      x" << index_string(t.index) << (t.padding ? " (padding)" : "") << " = " << t.x;
        if (!t.weight_index.empty() || combine == "sum") {
          o << "  * w" << (t.weight_index.empty() ? "" : index_string(t.weight_index)) << " = " << t.w << "  -> " << (BigInt(t.x) * t.w).str();
        }
        o << "\n";
      }
    }
    if (pool_p)
      o << ind << "    p = sum / 2^shift = " << rational_string(*pool_p) << " = " << decimal_string(*pool_p) << "; rounding " << pool_rounding
        << "; clamp [" << out_lo << ", " << out_hi << "]\n";
    if (acc_recomputed && acc_golden)
      o << ind << "    recomputed " << acc_recomputed->str()
        << (*acc_recomputed == *acc_golden ? ": matches the golden value" : ": DIFFERS from the golden value " + std::to_string(*acc_golden)) << "\n";
  }
  for (size_t b = 0; b < requant.size(); ++b) {
    const RequantStep& s = requant[b];
    o << ind << "  requant" << (requant.size() > 1 ? " branch " + std::to_string(b) + " (" + s.input_node + ")" : "") << ", channel " << s.channel
      << ": acc = " << s.acc << "\n";
    o << ind << "    alpha = " << s.alpha << "\n" << ind << "    delta = " << s.delta << "\n";
    o << ind << "    p = alpha * acc + delta = " << rational_string(s.p) << " = " << decimal_string(s.p) << (s.tie ? "  (an exact tie: k + 1/2)" : "")
      << "\n";
    o << ind << "    " << to_string(s.rounding) << "(p) = " << s.rounded.str() << "; clamp [" << s.lo << ", " << s.hi << "] -> " << s.clamped << "\n";
  }
  if (op == "add_requant") {
    BigInt sum = 0;
    for (const RequantStep& s : requant) sum += s.clamped;
    o << ind << "  sum of the branches = " << sum.str() << "; clamp [" << out_lo << ", " << out_hi << "] -> "
      << (sum < out_lo ? BigInt(out_lo) : sum > out_hi ? BigInt(out_hi) : sum).str() << "\n";
  }
  if (!note.empty()) o << ind << "  " << note << "\n";
  o << ind << "  output: " << output << "\n";
  return o.str();
}

std::vector<ElementComputation> explain_chain(GoldenRun& run, const std::string& node, const std::vector<int64_t>& ci, int depth) {
  std::vector<ElementComputation> chain;
  chain.push_back(compute_element(run, node, ci));
  for (int d = 0; d < depth; ++d) {
    const auto t = chain.back().largest();
    if (!t || t->source.empty()) break;
    chain.push_back(compute_element(run, t->source, t->index));
  }
  return chain;
}

}  // namespace qv::vectors
