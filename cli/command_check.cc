// qverify --model M --config C [...]: the main job (harness/pipeline.h), reported as a table or JSON.
#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "harness/html_report.h"
#include "harness/pipeline.h"
#include "harness/report.h"
#include "integerize/requant_forms.h"

namespace qv::cli {

namespace po = boost::program_options;

int command_check(const Args& args) {
  harness::PipelineOptions o;
  int64_t seed = 0;
  po::options_description opts(
      "qverify --model M --config C [--weights F] [--input F | --seed N] [--resolution R] [--width-mult X]\n"
      "        [--requant exact|thresholds|mulshift[:D]|tflite-single|tflite-double] [--json] [--html FILE] [--threads N]");
  opts.add_options()
      ("model", po::value(&o.model), "mobilenet_v1, proxylessnas_mobile14[_hadamard], vgg11..19[_bn] (vgg = vgg16), mobilenet_v2")
      ("config", po::value(&o.config), "quantization config: a shipped name (pact.json) or a file (qverify JSON, QuantLab JSON, Brevitas INI)")
      ("weights", po::value(&o.weights), "a qverify checkpoint or a peer's torch.save state_dict (default: seeded init + calibration)")
      ("input", po::value(&o.input), "a PNG or JPEG image (resized and center-cropped), or a .npy of uint8 pixels [H, W, 3] or [1, 3, H, W] at the resolution (default: the embedded natural image)")
      ("seed", po::value(&seed)->default_value(0), "seed of the weights and of the embedded input")
      ("resolution", po::value(&o.resolution)->default_value(224), "input resolution")
      ("width-mult", po::value(&o.width_mult)->default_value(1.0), "width multiplier (MobileNets)")
      ("requant", po::value(&o.requant), "requantization form (default: the config's)")
      ("threads", po::value(&o.threads)->default_value(2), "threads")
      ("json", "print the report as JSON")
      ("html", po::value<std::string>(), "also write the report as one self-contained HTML file (plots, heatmap, explanations)")
      ("all-layers", "list every layer, also those without differences")
      ("no-optimized", "do not run the optimized backend");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  auto usage = [&](const std::string& what) {
    std::ostringstream s;
    s << what << "\n" << opts;
    return UsageError(s.str());
  };
  if (o.config.empty()) throw usage("--config is required");
  if (seed < 0) throw usage("--seed must be >= 0");
  if (o.resolution < 32 || o.resolution > 1024) throw usage("--resolution must be in [32, 1024]");
  if (!(o.width_mult > 0 && o.width_mult <= 4)) throw usage("--width-mult must be in (0, 4]");
  if (vm.count("html") && vm["html"].as<std::string>().empty()) throw usage("--html needs a file name");
  if (o.threads < 1 || o.threads > 256) throw usage("--threads must be in [1, 256]");
  if (!o.requant.empty()) {
    try {
      integerize::parse_requant_form(o.requant);
    } catch (const std::invalid_argument& e) {
      throw usage(std::string("--requant: ") + e.what());
    }
  }
  o.seed = static_cast<uint64_t>(seed);
  o.run_optimized = vm.count("no-optimized") == 0;
  const bool json = vm.count("json") > 0;
  o.progress = [](const std::string& s) { std::fprintf(stderr, "qverify: %s...\n", s.c_str()); };
  const harness::PipelineResult r = harness::run_pipeline(o);
  if (vm.count("html")) harness::write_html_report(vm["html"].as<std::string>(), r);
  if (json) std::cout << harness::report_json(r).dump(2) << "\n";
  else harness::print_report(stdout, r, vm.count("all-layers") > 0);
  return harness::verdict(r) == 0 ? kAgree : kMismatch;
}

}  // namespace qv::cli
