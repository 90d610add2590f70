#include "vectors/vectors_run.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "harness/pipeline.h"
#include "ir/crc32.h"
#include "ir/error.h"
#include "ir/rational.h"
#include "vectors/npy.h"
#include "vectors/sha256.h"

#ifndef QV_VERSION
#define QV_VERSION "unknown"
#endif

namespace qv::vectors {

using json = nlohmann::json;
using qv::to_string;

namespace {

std::vector<std::string> strings(const std::vector<Rational>& v) {
  std::vector<std::string> s;
  for (const Rational& q : v) s.push_back(to_string(q));
  return s;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "", "cannot open file");
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

RunResult run_and_emit(const Job& job, const json& input, const std::string& pixels_path, Sink& sink,
                       const std::function<void(const std::string&)>& progress) {
  harness::PipelineOptions o;
  o.model = job.model;
  o.config = job.config;
  o.resolution = job.resolution;
  o.width_mult = job.width_mult;
  o.requant = job.requant;
  o.threads = job.threads;
  o.run_optimized = job.run_optimized;
  o.progress = progress;
  const int64_t index = input.at("index").get<int64_t>();
  const std::string kind = input.at("kind").get<std::string>();
  std::string pixels;
  if (kind == "seed") {
    o.seed = input.at("seed").get<uint64_t>();
  } else if (kind == "file") {
    o.seed = job.seed;
    o.input = pixels_path.empty() ? input.at("path").get<std::string>() : pixels_path;
    pixels = read_all(o.input);
    if (sha256_hex(pixels) != input.at("sha256").get<std::string>())
      throw InputError(o.input, "", "its SHA-256 differs from the one the manifest records for input " + std::to_string(index));
  } else {
    throw InputError("manifest.json", "inputs[" + std::to_string(index) + "].kind", "expected \"seed\" or \"file\"");
  }
  const harness::PipelineResult r = harness::run_pipeline(o);
  RunSpec spec;
  spec.index = index;
  spec.input = input;
  spec.network = &r.network;
  spec.exact = &r.exact.network;
  spec.trace = &r.reference;
  spec.requant_form = r.form.name;
  for (const auto& [node, g] : r.exact.grids) spec.grids[node] = {strings(g.scale), strings(g.offset)};
  if (kind == "file") {
    // The pixels themselves, so that `check` recomputes from the directory alone.
    const std::string rel = run_id(index) + "/input.pixels.npy";
    const IntTensor px = read_npy(o.input);
    sink.file("input", rel, pixels, &px);
  }
  RunResult out;
  out.entry = emit_run(spec, job.emit, sink);
  if (kind == "file") {
    // emit_run's table does not know the pixels file: add it (same fields as every file).
    Sha256 h;
    h.update(pixels);
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", crc32(pixels));
    out.entry["files"][run_id(index) + "/input.pixels.npy"] = {{"bytes", pixels.size()}, {"sha256", h.hex_digest()}, {"crc32", crc}};
  }
  out.config_file = r.config.source_file;
  out.config_sha256 = sha256_file_hex(r.config.source_file);
  out.config_scheme = r.config.name;
  out.requant_form = r.form.name;
  if (job.run_optimized && (r.optimized.differing_nodes > 0 || !r.optimized.ran))
    out.optimized_difference = r.optimized.ran ? r.optimized.first_difference : "optimized backend did not run: " + r.optimized.skipped_because;
  return out;
}

json job_header(const Job& job, const json& inputs, const RunResult& first) {
  json h;
  h["format"] = kFormatName;
  h["version"] = kFormatVersion;
  h["tool"] = {{"name", "qverify"}, {"version", QV_VERSION}};
  h["model"] = job.model;
  h["config"] = {{"name", job.config}, {"file", first.config_file}, {"sha256", first.config_sha256}, {"scheme", first.config_scheme}};
  h["seed"] = job.seed;
  h["resolution"] = job.resolution;
  h["width_mult"] = job.width_mult;
  h["requant"] = first.requant_form;
  h["mulshift_bits"] = job.emit.mulshift_bits;
  h["layout"] = job.emit.layout;
  json formats = json::array();
  for (Format f : job.emit.formats) formats.push_back(std::string(to_string(f)));
  h["formats"] = formats;
  h["inputs"] = inputs;
  h["element_order"] = "row-major (C order) in each tensor's stated layout";
  h["byte_order"] = "little-endian";
  return h;
}

Job job_from_manifest(const json& m, const std::string& path) {
  Job j;
  try {
    j.model = m.at("model").get<std::string>();
    j.config = m.at("config").at("name").get<std::string>();
    j.seed = m.at("seed").get<uint64_t>();
    j.resolution = m.at("resolution").get<int>();
    j.width_mult = m.at("width_mult").get<double>();
    j.requant = m.at("requant").get<std::string>();
    j.emit.layout = m.at("layout").get<std::string>();
    j.emit.mulshift_bits = m.value("mulshift_bits", 24);
    std::string fl;
    for (const json& f : m.at("formats")) fl += (fl.empty() ? "" : ",") + f.get<std::string>();
    j.emit.formats = parse_formats(fl);
  } catch (const json::exception& e) {
    throw InputError(path, "", std::string("malformed header: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw InputError(path, "key 'formats'", e.what());
  }
  // A config given by a relative path may not resolve from another working directory: fall back to
  // the file that was read (its SHA-256 is compared after the run either way).
  const std::string file = m.at("config").value("file", "");
  if (j.config.find('/') != std::string::npos && !std::filesystem::exists(j.config) && std::filesystem::exists(file)) j.config = file;
  if (j.emit.layout != "NCHW" && j.emit.layout != "NHWC") throw InputError(path, "key 'layout'", "expected \"NCHW\" or \"NHWC\"");
  return j;
}

std::vector<int64_t> decode_tensor_file(Format f, const std::string& bytes, const json& tensor, const std::string& path) {
  const auto type = IntType::parse(tensor.at("type").get<std::string>());
  if (!type) throw InputError(path, "type", "bad type in the manifest");
  std::vector<int64_t> out;
  switch (f) {
    case Format::npy: {
      return read_npy(path).data;
    }
    case Format::bin: {
      const Storage s = storage_of(*type);
      for (size_t i = 0; i + static_cast<size_t>(s.bytes) <= bytes.size(); i += static_cast<size_t>(s.bytes)) {
        uint64_t u = 0;
        for (int b = 0; b < s.bytes; ++b) u |= uint64_t{static_cast<unsigned char>(bytes[i + static_cast<size_t>(b)])} << (8 * b);
        if (s.is_signed && s.bytes < 8 && (u >> (8 * s.bytes - 1)) & 1) u |= ~uint64_t{0} << (8 * s.bytes);
        out.push_back(static_cast<int64_t>(u));
      }
      return out;
    }
    case Format::hex: {
      const int width = hex_word_bits(*type);
      size_t at = 0;
      while (at < bytes.size()) {
        const size_t nl = bytes.find('\n', at);
        const std::string w = bytes.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        at = nl == std::string::npos ? bytes.size() : nl + 1;
        if (w.empty()) continue;
        uint64_t u = std::stoull(w, nullptr, 16);
        if (type->is_signed && width < 64 && (u >> (width - 1)) & 1) u |= ~uint64_t{0} << width;
        out.push_back(static_cast<int64_t>(u));
      }
      return out;
    }
    case Format::csv: {
      std::string cur;
      for (char ch : bytes) {
        if (ch == ',' || ch == '\n') {
          if (!cur.empty()) out.push_back(std::stoll(cur));
          cur.clear();
        } else {
          cur.push_back(ch);
        }
      }
      if (!cur.empty()) out.push_back(std::stoll(cur));
      return out;
    }
    case Format::h: break;
  }
  throw InputError(path, "", "no integer decoder for this format");
}

}  // namespace qv::vectors
