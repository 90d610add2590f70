#include "cli/network_source.h"

#include "cli/commands.h"
#include "ir/error.h"
#include "ir/synthetic.h"
#include "vectors/npy.h"

namespace qv::cli {

Network make_synthetic(const std::string& model, int resolution, uint64_t seed) {
  if (resolution < 32 || resolution > 1024)
    throw UsageError("--resolution must be between 32 and 1024, got " + std::to_string(resolution));
  if (model == "vgg16" || model == "vgg") return synthetic_vgg16(resolution, seed);
  if (model == "mobilenet_v2") return synthetic_mobilenet_v2(resolution, seed);
  throw UsageError("unknown synthetic model '" + model + "' (expected vgg16 or mobilenet_v2)");
}

std::vector<IntTensor> load_inputs(const Network& network, const std::vector<std::string>& npy_files, uint64_t seed) {
  const auto input_nodes = network.inputs();
  if (npy_files.empty()) return synthetic_inputs(network, seed);
  if (npy_files.size() != input_nodes.size())
    throw UsageError("the network has " + std::to_string(input_nodes.size()) + " input(s) but " +
                     std::to_string(npy_files.size()) + " --input file(s) were given");
  std::vector<IntTensor> inputs;
  for (size_t i = 0; i < npy_files.size(); ++i) {
    IntTensor t = read_npy(npy_files[i]);
    const Node& node = *input_nodes[i];
    if (t.shape != node.output.shape)
      throw InputError(npy_files[i], "shape", "expected " + to_string(node.output.shape) + " for input '" + node.name +
                                                  "', got " + to_string(t.shape));
    for (size_t k = 0; k < t.data.size(); ++k)
      if (!node.output.type.contains(t.data[k]))
        throw InputError(npy_files[i], "element " + std::to_string(k),
                         "value " + std::to_string(t.data[k]) + " is outside the input type " + node.output.type.name() +
                             " of '" + node.name + "'");
    t.type = node.output.type;
    t.layout = t.shape.size() == 4 ? "NCHW" : "NC";
    inputs.push_back(std::move(t));
  }
  return inputs;
}

}  // namespace qv::cli
