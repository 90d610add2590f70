#include "harness/pipeline.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "fakequant/calibrate.h"
#include "fakequant/checkpoint_io.h"
#include "fakequant/config/read_config.h"
#include "fakequant/from_config.h"
#include "fakequant/import.h"
#include "harness/image_file.h"
#include "harness/natural_image.h"
#include "integer/evaluator.h"
#include "integerize/extract.h"
#include "integerize/harmonize.h"
#include "ir/error.h"
#include "ir/rational.h"
#include "reference/evaluator.h"
#include "vectors/npy.h"

namespace qv::harness {

namespace {

using Clock = std::chrono::steady_clock;

// uint8 pixels (HWC or 1x3xHxW) -> normalized float32 NCHW with the config's (or ImageNet's) mean/std.
torch::Tensor preprocess(const torch::Tensor& pixels_nchw, const config::QuantConfig& c) {
  std::vector<double> mean = c.preprocess.mean, std = c.preprocess.std;
  if (mean.empty()) mean = {0.485, 0.456, 0.406};
  if (std.empty()) std = {0.229, 0.224, 0.225};
  if (mean.size() == 1) mean.assign(3, mean[0]);
  if (std.size() == 1) std.assign(3, std[0]);
  const torch::Tensor m = torch::tensor(mean, torch::kFloat32).reshape({1, 3, 1, 1});
  const torch::Tensor s = torch::tensor(std, torch::kFloat32).reshape({1, 3, 1, 1});
  return (pixels_nchw.to(torch::kFloat32) / 255.0 - m) / s;
}

torch::Tensor image_tensor(const std::vector<uint8_t>& hwc, int h, int w) {
  torch::Tensor t = torch::empty({h, w, 3}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), hwc.data(), hwc.size());
  return t.permute({2, 0, 1}).unsqueeze(0).contiguous();
}

torch::Tensor load_input(const PipelineOptions& o, std::string& description) {
  if (o.input.empty()) {
    description = "embedded natural image (seed " + std::to_string(o.seed) + ", " + std::to_string(o.resolution) + "x" +
                  std::to_string(o.resolution) + ")";
    return image_tensor(natural_image(o.seed, o.resolution, o.resolution), o.resolution, o.resolution);
  }
  const std::string ext = std::filesystem::path(o.input).extension().string();
  if (ext != ".npy") {
    // PNG / JPEG: the models' geometry (shorter side to R * 256/224, central crop), then normalization.
    const RgbImage img = resize_and_crop(read_image(o.input), o.resolution);
    description = o.input + " (" + std::to_string(img.width) + "x" + std::to_string(img.height) + " after resize and crop)";
    return image_tensor(img.pixels, img.height, img.width);
  }
  const IntTensor t = read_npy(o.input);
  description = o.input;
  const bool hwc = t.rank() == 3 && t.dim(2) == 3;
  const bool nchw = t.rank() == 4 && t.dim(0) == 1 && t.dim(1) == 3;
  if (!hwc && !nchw) throw InputError(o.input, "shape " + to_string(t.shape), "expected [H, W, 3] or [1, 3, H, W] pixels");
  for (size_t i = 0; i < t.data.size(); ++i)
    if (t.data[i] < 0 || t.data[i] > 255)
      throw InputError(o.input, "element " + std::to_string(i), "pixel " + std::to_string(t.data[i]) + " outside [0, 255]");
  const int64_t h = hwc ? t.dim(0) : t.dim(2), w = hwc ? t.dim(1) : t.dim(3);
  if (h != o.resolution || w != o.resolution)
    throw InputError(o.input, "shape " + to_string(t.shape),
                     "the image is " + std::to_string(h) + "x" + std::to_string(w) + " but --resolution is " + std::to_string(o.resolution));
  std::vector<uint8_t> px(t.data.begin(), t.data.end());
  if (hwc) return image_tensor(px, static_cast<int>(h), static_cast<int>(w));
  torch::Tensor r = torch::empty({1, 3, h, w}, torch::kUInt8);
  std::memcpy(r.data_ptr<uint8_t>(), px.data(), px.size());
  return r;
}

FloatRun float_run(fakequant::NetworkImpl& net, const torch::Tensor& x, torch::ScalarType dtype) {
  FloatRun run;
  run.dtype = dtype == torch::kFloat64 ? "float64" : "float32";
  std::vector<std::pair<std::string, torch::Tensor>> all;
  net.eval();
  torch::NoGradGuard no_grad;
  // In float64 the weights are the float32 quantizer's values (the same integers and scales), so that
  // the run differs from float32 only in its arithmetic, not in its constants.
  struct Frozen {
    torch::Tensor* weight;
    fakequant::WeightQuant* wq;
    torch::Tensor original;
    fakequant::QuantKind kind;
  };
  std::vector<Frozen> frozen;
  if (dtype != torch::kFloat32)
    for (fakequant::GraphNode& n : net.graph.nodes) {
      torch::Tensor q;
      if (n.op == fakequant::GraphOp::conv) {
        q = n.conv->quantized_weight().detach().clone();
        frozen.push_back({&n.conv->weight, &n.conv->wq, n.conv->weight.detach().clone(), n.conv->wq.kind});
      } else if (n.op == fakequant::GraphOp::linear) {
        q = n.linear->quantized_weight().detach().clone();
        frozen.push_back({&n.linear->weight, &n.linear->wq, n.linear->weight.detach().clone(), n.linear->wq.kind});
      } else {
        continue;
      }
      frozen.back().weight->set_data(q);
      frozen.back().wq->kind = fakequant::QuantKind::none;
    }
  net.to(dtype);
  fakequant::run_graph(net.graph, x.to(dtype), &all);
  net.to(torch::kFloat32);
  for (Frozen& f : frozen) {
    f.weight->set_data(f.original);
    f.wq->kind = f.kind;
  }
  for (auto& [name, t] : all) {
    const torch::Tensor d = t.detach().to(torch::kFloat64).contiguous();
    FloatTensor f;
    f.shape.assign(d.sizes().begin(), d.sizes().end());
    f.values.assign(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
    run.values[name] = std::move(f);
  }
  for (const fakequant::GraphNode& n : net.graph.nodes)
    if (n.op == fakequant::GraphOp::act) run.act_input[n.name] = net.graph.nodes[n.inputs[0]].name;
  return run;
}

// The integer network input: the input quantizer applied to the float input in exact arithmetic.
IntTensor quantize_input(const integerize::Lowered& low, const torch::Tensor& x) {
  const integerize::QAct& a = low.input_act;
  const Node* in = low.network.find(low.input_quantizer);
  IntTensor q(in->output.shape, a.type, "NCHW");
  const std::vector<Rational> real = integerize::exact_values(x);
  const Shape& s = q.shape;
  for (size_t i = 0; i < real.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / (s[2] * s[3])) % s[1];
    const BigInt r = round_rational((real[i] - integerize::channel(a.offset, c)) / integerize::channel(a.scale, c), a.rounding);
    q.data[i] = r < a.qmin ? a.qmin : r > a.qmax ? a.qmax : static_cast<int64_t>(r);
  }
  return q;
}

BackendComparison compare_traces(const Trace& ref, const Trace& other, const std::string& name) {
  BackendComparison b;
  b.name = name;
  b.ran = true;
  for (const TraceEntry& e : ref) {
    const TraceEntry* o = find_entry(other, e.node);
    ++b.nodes;
    if (!o || o->value.shape != e.value.shape) {
      ++b.differing_nodes;
      if (b.first_difference.empty()) b.first_difference = e.node + ": missing or different shape";
      continue;
    }
    int64_t diff = 0;
    for (size_t i = 0; i < e.value.data.size(); ++i)
      if (o->value.data[i] != e.value.data[i]) {
        if (diff == 0 && b.first_difference.empty())
          b.first_difference = e.node + " element " + std::to_string(i) + ": reference " + std::to_string(e.value.data[i]) +
                               ", " + name + " " + std::to_string(o->value.data[i]);
        ++diff;
      }
    if (diff) ++b.differing_nodes, b.differing_elements += diff;
  }
  return b;
}

struct Prepared {
  std::shared_ptr<fakequant::NetworkImpl> net;
  torch::Tensor x;  // the preprocessed input
  bool fold_input = false;
  integerize::PixelInput pixel_grid;
};

// Model, config, weights, harmonization and calibration; the preprocessed input. Fills r's config, model,
// notes, rule log, harmonization list, input description and the "build" stage time.
Prepared prepare(const PipelineOptions& o, PipelineResult& r) {
  auto progress = [&](const std::string& s) {
    if (o.progress) o.progress(s);
  };
  auto t0 = Clock::now();
  auto lap = [&](const std::string& stage) {
    const auto t1 = Clock::now();
    r.seconds.emplace_back(stage, std::chrono::duration<double>(t1 - t0).count());
    t0 = t1;
  };
  torch::set_num_threads(std::max(1, o.threads));
  r.config = config::read_config(o.config);
  r.model = o.model;
  if (r.config.scheme == config::Scheme::fp32)
    throw InputError(r.config.source_file, "scheme",
                     "fp32 quantizes nothing, so there is no integer network to check; choose a quantized config "
                     "(pact.json, tqt.json, brevitas_4b.json, brevitas_8b.json)");
  const std::string model = o.model.empty() && r.config.model ? *r.config.model : o.model;
  if (model.empty()) throw InputError("--model", "", "no model given and the config names none");
  r.model = model;
  fakequant::ModelOptions mo;
  mo.resolution = o.resolution;
  mo.width_mult = o.width_mult;
  progress("building " + model + " under " + r.config.name);
  torch::manual_seed(o.seed);
  std::shared_ptr<fakequant::NetworkImpl> net;
  try {
    net = fakequant::build_model(model, r.config, mo, &r.rule_log);
  } catch (const std::invalid_argument& e) {
    throw InputError(o.model.empty() ? r.config.source_file : "--model", model, e.what());
  }
  const fakequant::ModelQuant mq = fakequant::model_quant(r.config);
  fakequant::ActQuant input_q = fakequant::act_quant(r.config, r.config.input);
  // Pixels as the integer input when the normalization folds exactly into an unpadded first conv
  // (one std for all channels keeps the input scale per tensor).
  const std::vector<double> mean = r.config.preprocess.mean.empty() ? std::vector<double>{0.485, 0.456, 0.406} : r.config.preprocess.mean;
  const std::vector<double> stdv = r.config.preprocess.std.empty() ? std::vector<double>{0.229, 0.224, 0.225} : r.config.preprocess.std;
  const bool one_std = std::all_of(stdv.begin(), stdv.end(), [&](double v) { return static_cast<float>(v) == static_cast<float>(stdv[0]); });
  const bool fold_input = one_std && integerize::input_folds_into_first_conv(*net);
  integerize::PixelInput pixel_grid;
  for (size_t c = 0; c < 3; ++c) {
    pixel_grid.mean.push_back(static_cast<float>(mean.size() == 1 ? mean[0] : mean.at(c)));
    pixel_grid.std.push_back(static_cast<float>(stdv.size() == 1 ? stdv[0] : stdv.at(c)));
  }
  if (fold_input) r.notes.push_back("input: the 8-bit pixels; the normalization folds into the unpadded first conv");
  for (const integerize::HarmonizeChange& c : integerize::harmonize(*net, mq.signed_act, input_q, fold_input))
    r.harmonized.push_back(c.inserted + ": " + c.reason);
  const torch::Tensor pixels = load_input(o, r.input_description);
  const torch::Tensor x = preprocess(pixels, r.config);
  if (!o.weights.empty()) {
    progress("loading " + o.weights);
    // Our own checkpoints first; a peer's state_dict by its naming otherwise.
    try {
      fakequant::load_checkpoint(*net, o.weights);
      r.notes.push_back("weights and quantizer ranges from " + o.weights);
    } catch (const InputError& own) {
      // A peer's state_dict: MobileNetV2 from QuantLab (our names) or torchvision, the others from Brevitas.
      std::vector<fakequant::PeerNaming> namings = {fakequant::PeerNaming::brevitas};
      if (model == "mobilenet_v2") namings = {fakequant::PeerNaming::quantlab, fakequant::PeerNaming::torchvision_mobilenet_v2};
      std::vector<std::string> left;
      for (size_t k = 0; k < namings.size(); ++k) {
        try {
          left = fakequant::import_state_dict(*net, o.weights, namings[k]);
          break;
        } catch (const InputError&) {
          if (k + 1 == namings.size()) throw;  // the last naming's message lists its keys
        }
      }
      // Quantizers the checkpoint does not hold (harmonization's, a float checkpoint's) get ranges from data.
      std::set<std::string> missing;
      for (const std::string& key : left) missing.insert(key.substr(0, key.rfind('.')));
      for (const auto& item : net->named_modules())
        if (dynamic_cast<fakequant::QActImpl*>(item.value().get()) && item.key().rfind("harmonize_", 0) == 0) missing.insert(item.key());
      r.notes.push_back("weights imported from " + o.weights + "; " + std::to_string(missing.size()) +
                        " quantizer ranges calibrated on data, the others as stored");
      if (!missing.empty())
        fakequant::calibrate(*net, {preprocess(image_tensor(natural_image(o.seed + 1000, o.resolution, o.resolution), o.resolution, o.resolution), r.config),
                                    preprocess(image_tensor(natural_image(o.seed + 2000, o.resolution, o.resolution), o.resolution, o.resolution), r.config)},
                             /*reset_batch_norm=*/false, &missing);
      (void)own;
    }
  } else {
    progress("calibrating seeded random weights");
    // Four seeded natural images, never the input: the network depends on the seed only, so every
    // input of a vector set runs through the same integer network.
    std::vector<torch::Tensor> images;
    for (uint64_t k = 1; k <= 4; ++k)
      images.push_back(preprocess(image_tensor(natural_image(o.seed + 1000 * k, o.resolution, o.resolution), o.resolution, o.resolution), r.config));
    fakequant::calibrate(*net, {torch::cat(images)}, /*reset_batch_norm=*/true);
    r.notes.push_back("seeded random weights (seed " + std::to_string(o.seed) + "), BN statistics and quantizer ranges calibrated on 4 seeded images");
  }
  lap("build");
  return Prepared{net, x, fold_input, pixel_grid};
}

// Extraction, exact lowering, the requant form (and a planted fault); the quantized input.
IntTensor integerize_prepared(const PipelineOptions& o, const Prepared& p, PipelineResult& r) {
  const torch::Tensor& x = p.x;
  if (o.progress) o.progress("integerizing");
  const Shape shape(x.sizes().begin(), x.sizes().end());
  r.exact = integerize::lower(integerize::extract(*p.net, shape, p.fold_input ? &p.pixel_grid : nullptr));
  r.exact.network.metadata["model"] = r.model;
  r.exact.network.metadata["config"] = r.config.source_file;
  r.exact.network.metadata["seed"] = std::to_string(o.seed);
  r.form = integerize::parse_requant_form(o.requant.empty() ? r.config.requant.form +
                                                                   (r.config.requant.form == "mulshift" ? ":" + std::to_string(r.config.requant.mulshift_bits) : "")
                                                             : o.requant);
  r.network = r.exact.network;
  r.form_bounds = integerize::apply_requant_form(r.network, r.form);
  if (o.plant_fault) o.plant_fault(r.network);
  return quantize_input(r.exact, x);
}

}  // namespace

PipelineResult run_pipeline(const PipelineOptions& o) {
  PipelineResult r;
  torch::set_num_threads(std::max(1, o.threads));
  const Prepared p = prepare(o, r);
  auto t0 = Clock::now();
  auto lap = [&](const std::string& stage) {
    const auto t1 = Clock::now();
    r.seconds.emplace_back(stage, std::chrono::duration<double>(t1 - t0).count());
    t0 = t1;
  };
  auto progress = [&](const std::string& s) {
    if (o.progress) o.progress(s);
  };
  const torch::Tensor& x = p.x;
  progress("running the fake-quant network (float32, float64)");
  const FloatRun f32 = float_run(*p.net, x, torch::kFloat32);
  const FloatRun f64 = float_run(*p.net, x, torch::kFloat64);
  lap("fake-quant");
  const IntTensor q_in = integerize_prepared(o, p, r);
  lap("integerize");
  progress("reference evaluation");
  reference::ReferenceOptions ro;
  ro.threads = o.threads;
  r.reference = evaluate_reference(r.network, {q_in}, ro);
  lap("reference");
  if (o.run_optimized) {
    progress("optimized backend");
    integer::Options io;
    io.threads = o.threads;
    r.optimized = compare_traces(r.reference, integer::evaluate_optimized(r.network, {q_in}, io), "optimized");
    lap("optimized");
  } else {
    r.optimized.skipped_because = "--no-optimized";
  }
  progress("cross-checking");
  CrossCheckOptions co;
  for (const integerize::FormBound& b : r.form_bounds) co.form_bounds[b.node] = b.max_lsb_error;
  r.float32 = cross_check(r.exact, r.network, r.reference, f32, co);
  r.float64 = cross_check(r.exact, r.network, r.reference, f64, co);
  lap("cross-check");
  return r;
}

IntegerModel integer_model(const PipelineOptions& options) {
  PipelineResult r;
  torch::set_num_threads(std::max(1, options.threads));
  const Prepared p = prepare(options, r);
  IntegerModel m;
  m.input = integerize_prepared(options, p, r);
  m.network = std::move(r.network);
  m.config = r.config.name;
  return m;
}

}  // namespace qv::harness
