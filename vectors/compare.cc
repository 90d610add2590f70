#include "vectors/compare.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "ir/error.h"
#include "ir/int_type.h"
#include "vectors/golden.h"

namespace qv::vectors {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

int channel_axis(const json& entry) {
  const std::string l = entry.value("layout", "");
  const size_t rank = entry.at("shape").size();
  if (l == "NHWC") return 3;
  if (rank >= 2) return 1;
  return -1;
}

Shape shape_of(const json& entry) {
  Shape s;
  for (const json& d : entry.at("shape")) s.push_back(d.get<int64_t>());
  return s;
}

// R(num / den) for den > 0 from one floor division.
BigInt round_q(const BigInt& q, const BigInt& r, const BigInt& den, Rounding mode) {
  // num = q * den + r, 0 <= r < den.
  if (r == 0) return q;
  switch (mode) {
    case Rounding::floor: return q;
    case Rounding::ceil: return q + 1;
    case Rounding::trunc: return q < 0 ? q + 1 : q;
    default: break;
  }
  const BigInt twice = r * 2;
  if (twice < den) return q;
  if (twice > den) return q + 1;
  switch (mode) {  // p = q + 1/2
    case Rounding::half_up: return q + 1;
    case Rounding::half_down: return q;
    case Rounding::half_even: return (q % 2 == 0) ? q : q + 1;
    case Rounding::half_away: return q < 0 ? q : q + 1;
    default: return q;
  }
}

struct Part {
  BigInt num, den;  // den > 0
  bool part_clamp = false;
  int64_t lo = 0, hi = 0;
};

// The rounding model of one node: per element, the parts and the final clamp.
struct Model {
  Rounding rounding = Rounding::half_even;
  int64_t lo = 0, hi = 0;  // final clamp
  std::string what;        // "requant", "add_requant", "avg_pool2d"
  std::function<void(size_t, std::vector<Part>&)> parts;
};

struct ChannelAD {
  BigInt a, d, den;  // p = (a * acc + d) / den
};

std::vector<ChannelAD> channel_table(const json& exact, const std::string& file, const std::string& where) {
  std::vector<ChannelAD> out;
  const auto alpha = exact.at("alpha").get<std::vector<std::string>>();
  const auto delta = exact.at("delta").get<std::vector<std::string>>();
  for (size_t c = 0; c < alpha.size() && c < delta.size(); ++c) {
    const Rational a = parse_rational(alpha[c], file, where + "alpha"), d = parse_rational(delta[c], file, where + "delta");
    const BigInt an = boost::multiprecision::numerator(a), ad = boost::multiprecision::denominator(a);
    const BigInt dn = boost::multiprecision::numerator(d), dd = boost::multiprecision::denominator(d);
    out.push_back({an * dd, dn * ad, ad * dd});
  }
  return out;
}

std::optional<Model> rounding_model(GoldenRun& run, const std::string& node, std::vector<std::vector<int64_t>>& keep) {
  const json& nd = run.node(node);
  const std::string op = nd.at("op").get<std::string>();
  const json& out_entry = run.output_entry(node);
  const Shape shape = shape_of(out_entry);
  const int axis = channel_axis(out_entry);
  const auto type = IntType::parse(out_entry.at("type").get<std::string>());
  const std::vector<std::string> inputs = nd.value("inputs", std::vector<std::string>{});
  const std::string rq_path = nd.contains("requant_file") ? (fs::path(run.dir()) / nd.at("requant_file").get<std::string>()).string() : node;
  auto channel_of = [shape, axis](size_t i) -> size_t {
    if (axis < 0) return 0;
    int64_t stride = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) stride *= shape[d];
    return static_cast<size_t>((static_cast<int64_t>(i) / stride) % shape[static_cast<size_t>(axis)]);
  };
  Model m;
  m.what = op;
  try {
    if (op == "requant") {
      const json& ex = run.requant_file(node).at("exact");
      m.rounding = parse_rounding(ex.at("rounding").get<std::string>()).value_or(Rounding::half_even);
      m.lo = ex.at("lo").get<int64_t>();
      m.hi = ex.at("hi").get<int64_t>();
      auto table = std::make_shared<std::vector<ChannelAD>>(channel_table(ex, rq_path, "exact."));
      keep.push_back(run.stated_data(run.node_tensor(inputs.at(0), "output")));
      const std::vector<int64_t>* acc = &keep.back();
      m.parts = [table, acc, channel_of](size_t i, std::vector<Part>& ps) {
        const size_t c = table->size() == 1 ? 0 : channel_of(i);
        const ChannelAD& t = table->at(c);
        ps.assign(1, Part{t.a * (*acc)[i] + t.d, t.den});
      };
      return m;
    }
    if (op == "add_requant") {
      const json& br = run.requant_file(node).at("branches");
      auto tables = std::make_shared<std::vector<std::vector<ChannelAD>>>();
      auto clamps = std::make_shared<std::vector<std::pair<int64_t, int64_t>>>();
      std::vector<const std::vector<int64_t>*> accs;
      for (size_t b = 0; b < br.size() && b < inputs.size(); ++b) {
        const json& ex = br.at(b).at("exact");
        m.rounding = parse_rounding(ex.at("rounding").get<std::string>()).value_or(Rounding::half_even);
        tables->push_back(channel_table(ex, rq_path, "branches[" + std::to_string(b) + "].exact."));
        clamps->push_back({ex.at("lo").get<int64_t>(), ex.at("hi").get<int64_t>()});
        keep.push_back(run.stated_data(run.node_tensor(inputs[b], "output")));
      }
      for (size_t b = 0; b < tables->size(); ++b) accs.push_back(&keep[keep.size() - tables->size() + b]);
      m.lo = type->min();
      m.hi = type->max();
      m.parts = [tables, clamps, accs, channel_of](size_t i, std::vector<Part>& ps) {
        ps.clear();
        for (size_t b = 0; b < tables->size(); ++b) {
          const auto& tb = (*tables)[b];
          const ChannelAD& t = tb.at(tb.size() == 1 ? 0 : channel_of(i));
          ps.push_back(Part{t.a * (*accs[b])[i] + t.d, t.den, true, (*clamps)[b].first, (*clamps)[b].second});
        }
      };
      return m;
    }
    if (op == "avg_pool2d") {
      const json params = nd.value("params", json::object());
      m.rounding = parse_rounding(params.value("rounding", "floor")).value_or(Rounding::floor);
      m.lo = type->min();
      m.hi = type->max();
      const BigInt den = BigInt(1) << static_cast<unsigned>(params.value("shift", 0));
      GoldenRun* r = &run;
      const std::string name = node;
      const json entry = out_entry;
      m.parts = [r, name, entry, shape, den](size_t i, std::vector<Part>& ps) {
        const auto ci = GoldenRun::to_canonical_index(entry, unflatten(shape, static_cast<int64_t>(i)));
        const ElementComputation e = compute_element(*r, name, ci);
        BigInt sum = 0;
        for (const Term& t : e.terms) sum += t.x;
        ps.assign(1, Part{sum, den});
      };
      return m;
    }
  } catch (const json::exception& e) {
    throw InputError(rq_path, "", std::string("malformed requantization: ") + e.what());
  }
  return std::nullopt;
}

std::string plural(int64_t n, const std::string& one, const std::string& many) { return std::to_string(n) + " " + (n == 1 ? one : many); }

}  // namespace

Diagnosis diagnose_layer(GoldenRun& run, const std::string& node, const std::vector<int64_t>& expected, const std::vector<int64_t>& actual) {
  const json& entry = run.output_entry(node);
  const Shape shape = shape_of(entry);
  const std::string layout = entry.value("layout", "");
  std::vector<size_t> diff;
  for (size_t i = 0; i < expected.size(); ++i)
    if (expected[i] != actual[i]) diff.push_back(i);
  const int64_t n_diff = static_cast<int64_t>(diff.size());
  Diagnosis d;
  d.detail["differing"] = n_diff;
  d.detail["elements"] = expected.size();
  if (diff.empty()) {
    d.kind = "none";
    d.message = "no difference";
    return d;
  }

  // (d) transposed layout.
  if (shape.size() == 4 && (layout == "NCHW" || layout == "NHWC")) {
    const std::vector<int64_t> other = permute_layout(expected, shape, layout);
    if (other == actual) {
      const std::string o = layout == "NCHW" ? "NHWC" : "NCHW";
      d.kind = "transposed";
      d.message = "transposed layout: the dump holds the golden tensor in " + o + " order where " + layout + " was expected (all " +
                  std::to_string(expected.size()) + " elements)";
      d.detail["expected_layout"] = layout;
      d.detail["actual_layout"] = o;
      return d;
    }
  }

  // (c) off by a factor of 2^k.
  {
    bool any_nonzero = false;
    for (size_t i : diff) any_nonzero = any_nonzero || expected[i] != 0;
    if (any_nonzero) {
      for (int k = 1; k <= 32; ++k) {
        bool up = true;
        for (size_t i = 0; i < expected.size() && up; ++i) up = static_cast<__int128>(expected[i]) * (__int128{1} << k) == actual[i];
        if (up) {
          d.kind = "shift";
          d.message = "off by a factor of 2^" + std::to_string(k) + ": shift wrong (actual = expected * 2^" + std::to_string(k) + " in all " +
                      std::to_string(expected.size()) + " elements, " + plural(n_diff, "differing", "differing") + ")";
          d.detail["k"] = k;
          d.detail["direction"] = "multiplied";
          return d;
        }
        for (Rounding r : {Rounding::floor, Rounding::half_up, Rounding::half_even, Rounding::trunc, Rounding::half_away, Rounding::ceil}) {
          bool down = true;
          for (size_t i = 0; i < expected.size() && down; ++i) down = round_shift_right(expected[i], k, r) == actual[i];
          if (down) {
            d.kind = "shift";
            d.message = "off by a factor of 2^" + std::to_string(k) + ": shift wrong (actual = " + std::string(to_string(r)) + "(expected / 2^" +
                        std::to_string(k) + ") in all " + std::to_string(expected.size()) + " elements)";
            d.detail["k"] = -k;
            d.detail["direction"] = "divided";
            d.detail["rounding"] = std::string(to_string(r));
            return d;
          }
        }
      }
    }
  }

  // (a), (b): the rounding model of requant, add_requant and avg_pool2d nodes.
  std::vector<std::vector<int64_t>> keep;
  keep.reserve(8);
  if (const auto m = rounding_model(run, node, keep)) {
    // Variants: every rounding with the clamp, and the model's rounding without the final clamp.
    const size_t nr = kAllRoundings.size();
    std::vector<bool> all_match(nr + 1, true);
    int64_t on_ties = 0, outside = 0;
    std::vector<Part> ps;
    std::vector<BigInt> value(nr + 1);
    std::set<size_t> diff_set(diff.begin(), diff.end());
    json example;
    for (size_t i = 0; i < expected.size(); ++i) {
      m->parts(i, ps);
      bool tie = false;
      for (size_t v = 0; v <= nr; ++v) value[v] = 0;
      for (const Part& p : ps) {
        BigInt q, r;
        boost::multiprecision::divide_qr(p.num, p.den, q, r);
        if (r < 0) {
          r += p.den;
          q -= 1;
        }
        tie = tie || (r * 2 == p.den);
        for (size_t v = 0; v <= nr; ++v) {
          BigInt y = round_q(q, r, p.den, v < nr ? kAllRoundings[v] : m->rounding);
          if (p.part_clamp) y = y < p.lo ? BigInt(p.lo) : y > p.hi ? BigInt(p.hi) : y;
          value[v] += y;
        }
      }
      for (size_t v = 0; v < nr; ++v) value[v] = value[v] < m->lo ? BigInt(m->lo) : value[v] > m->hi ? BigInt(m->hi) : value[v];
      for (size_t v = 0; v <= nr; ++v)
        if (all_match[v] && value[v] != actual[i]) all_match[v] = false;
      if (expected[i] != actual[i]) {
        if (tie) ++on_ties;
        if (value[nr] < m->lo || value[nr] > m->hi) ++outside;
        if (example.is_null()) example = {{"flat", i}, {"expected", expected[i]}, {"actual", actual[i]}, {"unclamped", value[nr].str()}, {"tie", tie}};
      }
    }
    d.detail["on_ties"] = on_ties;
    d.detail["model_rounding"] = std::string(to_string(m->rounding));
    d.detail["clamp"] = {m->lo, m->hi};
    d.detail["example"] = example;
    if (all_match[nr] && outside == n_diff) {
      d.kind = "saturation";
      d.message = "outputs equal the model's before the clamp: saturation missing (all " + plural(n_diff, "differing output lies", "differing outputs lie") +
                  " outside [" + std::to_string(m->lo) + ", " + std::to_string(m->hi) + "] and equal the unclamped " +
                  std::string(to_string(m->rounding)) + "(p))";
      return d;
    }
    std::vector<std::string> matching;
    for (size_t v = 0; v < nr; ++v)
      if (all_match[v] && kAllRoundings[v] != m->rounding) matching.emplace_back(to_string(kAllRoundings[v]));
    if (!matching.empty()) {
      std::string also;
      for (size_t k = 1; k < matching.size(); ++k) also += (k > 1 ? ", " : "") + matching[k];
      d.kind = "rounding";
      d.detail["matches"] = matching;
      const std::string conv = "match " + matching[0] + (also.empty() ? "" : " (equally " + also + " on this layer)") + " where the model uses " +
                               std::string(to_string(m->rounding));
      if (on_ties == n_diff)
        d.message = (n_diff == 1 ? "the differing output sits on an exact tie and " : "all " + std::to_string(n_diff) + " differing outputs sit on exact ties and ") + conv;
      else
        d.message = (n_diff == 1 ? "the differing output " : "all " + std::to_string(n_diff) + " differing outputs ") + conv + " (" + std::to_string(on_ties) +
                    " of them on exact ties)";
      return d;
    }
    // The requantization scale off by 2^k: actual = clamp(R(2^k * p)) (with and without the clamp).
    for (int k : {1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8}) {
      for (bool clamped : {true, false}) {
        bool all = true;
        for (size_t i = 0; i < expected.size() && all; ++i) {
          m->parts(i, ps);
          BigInt v = 0;
          for (const Part& p : ps) {
            const BigInt num = k > 0 ? BigInt(p.num << static_cast<unsigned>(k)) : p.num;
            const BigInt den = k < 0 ? BigInt(p.den << static_cast<unsigned>(-k)) : p.den;
            BigInt y = round_div(num, den, m->rounding);
            if (p.part_clamp) y = y < p.lo ? BigInt(p.lo) : y > p.hi ? BigInt(p.hi) : y;
            v += y;
          }
          if (clamped) v = v < m->lo ? BigInt(m->lo) : v > m->hi ? BigInt(m->hi) : v;
          all = v == actual[i];
        }
        if (all) {
          const std::string f = k > 0 ? "2^" + std::to_string(k) + " * p" : "p / 2^" + std::to_string(-k);
          d.kind = "shift";
          d.detail["k"] = k;
          d.detail["direction"] = "requantization scale";
          d.detail["clamped"] = clamped;
          d.message = "off by a factor of 2^" + std::to_string(k > 0 ? k : -k) + ": shift wrong (every output equals " +
                      (clamped ? "clamp(" : "") + std::string(to_string(m->rounding)) + "(" + f + ")" + (clamped ? ")" : "") +
                      ": the requantization scale is " + (k > 0 ? "multiplied" : "divided") + " by 2^" + std::to_string(k > 0 ? k : -k) +
                      (clamped ? "" : ", and the clamp is missing too") + ")";
          return d;
        }
      }
    }
  }

  // (e) one corrupted channel.
  const int axis = channel_axis(entry);
  if (axis >= 0) {
    std::map<int64_t, int64_t> per_channel;
    for (size_t i : diff) ++per_channel[unflatten(shape, static_cast<int64_t>(i))[static_cast<size_t>(axis)]];
    d.detail["channels"] = per_channel.size();
    if (per_channel.size() == 1 && shape[static_cast<size_t>(axis)] > 1) {
      const int64_t c = per_channel.begin()->first;
      int64_t in_channel = 1;
      for (size_t k = 0; k < shape.size(); ++k)
        if (static_cast<int>(k) != axis) in_channel *= shape[k];
      d.kind = "channel";
      d.detail["channel"] = c;
      d.message = "one corrupted channel: all " + plural(n_diff, "difference is", "differences are") + " in output channel " + std::to_string(c) +
                  " (of " + std::to_string(shape[static_cast<size_t>(axis)]) + "; " + std::to_string(n_diff) + " of its " + std::to_string(in_channel) +
                  " elements differ)";
      return d;
    }
  }
  int64_t max_abs = 0;
  for (size_t i : diff) max_abs = std::max<int64_t>(max_abs, std::abs(actual[i] - expected[i]));
  d.kind = "unexplained";
  d.detail["max_abs_difference"] = max_abs;
  d.message = "unexplained: " + plural(n_diff, "element differs", "elements differ") + " (max |actual - expected| " + std::to_string(max_abs) +
              ") and no convention (rounding, saturation, shift, layout, one channel) accounts for all of them";
  return d;
}

CompareReport compare_dump(const std::string& dir, const std::string& dump, const CompareOptions& options) {
  CompareReport rep;
  rep.dir = dir;
  rep.dump = dump;
  std::string bytes;
  const json m = load_manifest(dir, &bytes);
  const auto problems = verify_checksums(dir, m, bytes);
  if (!problems.empty())
    throw InputError((fs::path(dir) / problems[0].file).string(), "", problems[0].what + " (the golden directory fails its checksums; run `qverify check`)");
  if (!fs::is_directory(dump)) throw InputError(dump, "", "no such directory (expected the dump: one file per layer, <node>.npy / .hex / .csv / .bin)");
  size_t pos = 0;
  if (!options.run.empty()) {
    bool found = false;
    for (size_t i = 0; i < m.at("runs").size(); ++i)
      if (m.at("runs")[i].at("id") == options.run) {
        pos = i;
        found = true;
      }
    if (!found) throw InputError((fs::path(dir) / kManifestName).string(), "runs", "no run '" + options.run + "'");
  }
  GoldenRun run(dir, m, pos);
  rep.run = run.id();
  std::vector<Format> formats = options.format ? std::vector<Format>{*options.format} : std::vector<Format>{Format::npy, Format::hex, Format::csv, Format::bin};
  std::vector<fs::path> roots{fs::path(dump) / run.id(), fs::path(dump)};
  std::set<std::string> used;
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> first_values;
  for (const std::string& name : run.order()) {
    LayerComparison lc;
    lc.node = name;
    lc.op = run.node(name).at("op").get<std::string>();
    const std::string key = run.node_tensor(name, "output");
    const json& entry = run.tensor_entry(key);
    lc.elements = entry.at("elements").get<int64_t>();
    const std::string fc = file_component(name);
    for (const fs::path& root : roots) {
      for (Format f : formats) {
        for (const std::string& stem : {fc + ".output", fc}) {
          const fs::path p = root / (stem + "." + std::string(to_string(f)));
          if (lc.file.empty() && fs::is_regular_file(p)) {
            lc.file = p.string();
            lc.format = std::string(to_string(f));
          }
          if (fs::is_regular_file(p)) used.insert(fs::weakly_canonical(p).string());
        }
      }
    }
    if (lc.file.empty()) {
      rep.layers.push_back(lc);
      continue;
    }
    ++rep.compared;
    const std::vector<int64_t> actual = read_tensor_file(*parse_formats(lc.format).begin(), lc.file, entry, &lc.permuted_shape);
    const std::vector<int64_t> expected = run.stated_data(key);
    for (size_t i = 0; i < expected.size(); ++i)
      if (expected[i] != actual[i]) {
        if (lc.differing == 0) {
          lc.first_flat = static_cast<int64_t>(i);
          lc.first_index = unflatten(shape_of(entry), lc.first_flat);
          lc.expected = expected[i];
          lc.actual = actual[i];
        }
        ++lc.differing;
      }
    if (lc.differing > 0 && !rep.first) {
      rep.first = rep.layers.size();
      first_values.emplace_back(expected, actual);
    }
    rep.layers.push_back(lc);
  }
  if (rep.compared == 0) {
    std::string fl;
    for (Format f : formats) fl += (fl.empty() ? "" : ", ") + std::string(".") + std::string(to_string(f));
    throw InputError(dump, "", "no layer file found (expected files named like the golden outputs, e.g. " + file_component(run.order().back()) +
                                   ".output" + "." + std::string(to_string(formats[0])) + " or " + file_component(run.order().back()) + "." +
                                   std::string(to_string(formats[0])) + "; formats tried: " + fl + ")");
  }
  // Files of the tried formats that are no layer output.
  for (const fs::path& root : roots) {
    if (!fs::is_directory(root)) continue;
    for (const auto& de : fs::directory_iterator(root)) {
      if (!de.is_regular_file()) continue;
      const std::string ext = de.path().extension().string();
      bool tried = false;
      for (Format f : formats) tried = tried || ext == "." + std::string(to_string(f));
      if (tried && !used.count(fs::weakly_canonical(de.path()).string())) rep.ignored.push_back(de.path().string());
    }
  }
  std::sort(rep.ignored.begin(), rep.ignored.end());
  if (rep.first) {
    const LayerComparison& lc = rep.layers[*rep.first];
    const json& entry = run.output_entry(lc.node);
    rep.element = compute_element(run, lc.node, GoldenRun::to_canonical_index(entry, lc.first_index));
    rep.diagnosis = diagnose_layer(run, lc.node, first_values[0].first, first_values[0].second);
  } else {
    rep.diagnosis.kind = "none";
    rep.diagnosis.message = "every layer in the dump matches bit for bit";
  }
  return rep;
}

json CompareReport::to_json() const {
  json j;
  j["dir"] = dir;
  j["dump"] = dump;
  j["run"] = run;
  j["ok"] = ok();
  j["layers_compared"] = compared;
  json ls = json::array();
  for (const LayerComparison& l : layers) {
    json x = {{"node", l.node}, {"op", l.op}, {"present", !l.file.empty()}};
    if (!l.file.empty()) {
      x["file"] = l.file;
      x["format"] = l.format;
      x["elements"] = l.elements;
      x["differing"] = l.differing;
      if (l.permuted_shape) x["permuted_shape"] = true;
      if (l.differing) x["first"] = {{"index", l.first_index}, {"flat", l.first_flat}, {"expected", l.expected}, {"actual", l.actual}};
    }
    ls.push_back(std::move(x));
  }
  j["layers"] = std::move(ls);
  if (first) {
    const LayerComparison& l = layers[*first];
    j["first_diverging"] = {{"node", l.node},   {"op", l.op},           {"index", l.first_index}, {"flat", l.first_flat},
                            {"expected", l.expected}, {"actual", l.actual}, {"differing", l.differing}, {"elements", l.elements}};
    if (element) j["first_diverging"]["computation"] = element->to_json();
  }
  j["diagnosis"] = {{"kind", diagnosis.kind}, {"message", diagnosis.message}, {"detail", diagnosis.detail}};
  j["ignored_files"] = ignored;
  return j;
}

std::string CompareReport::to_text(size_t max_terms) const {
  std::ostringstream o;
  o << "golden " << dir << " (" << run << ") against the dump " << dump << "\n";
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-44s %-12s %-6s %s\n", "layer", "op", "format", "status");
  o << buf;
  for (const LayerComparison& l : layers) {
    std::string status;
    if (l.file.empty()) status = "-  (not in the dump)";
    else if (l.differing == 0) status = "ok" + std::string(l.permuted_shape ? " (npy shape in the other layout)" : "");
    else
      status = "DIFFERS " + std::to_string(l.differing) + "/" + std::to_string(l.elements) + ", first " + index_string(l.first_index) + ": expected " +
               std::to_string(l.expected) + ", actual " + std::to_string(l.actual);
    std::snprintf(buf, sizeof buf, "%-44s %-12s %-6s %s\n", l.node.c_str(), l.op.c_str(), l.format.c_str(), status.c_str());
    o << buf;
  }
  for (size_t i = 0; i < ignored.size() && i < 5; ++i) o << "ignored (no layer output): " << ignored[i] << "\n";
  if (ignored.size() > 5) o << "ignored: " << ignored.size() - 5 << " more file(s) that are no layer output (--json lists them)\n";
  if (!first) {
    o << "verdict: match: " << compared << " layer(s) equal bit for bit\n";
    return o.str();
  }
  const LayerComparison& l = layers[*first];
  o << "\nfirst diverging layer: " << l.node << " (" << l.op << "), " << l.differing << " of " << l.elements << " elements differ\n";
  o << "first differing element " << index_string(l.first_index) << " (flat " << l.first_flat << "): expected " << l.expected << ", actual " << l.actual
    << "\n";
  if (element) o << "\ncomputation of the element (golden vectors):\n" << element->to_text(max_terms, "  ");
  o << "\ndiagnosis: " << diagnosis.message << "\n";
  o << "verdict: DIVERGES at " << l.node << "\n";
  return o.str();
}

}  // namespace qv::vectors
