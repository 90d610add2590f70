#include "fakequant/train.h"

#include "fakequant/data/idx.h"

namespace qv::fakequant {

std::vector<double> train_steps(torch::nn::Module& net, const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                                const torch::Tensor& images, const torch::Tensor& labels, const TrainOptions& options) {
  net.train();
  torch::optim::Adam opt(net.parameters(), torch::optim::AdamOptions(options.learning_rate));
  std::vector<double> losses;
  for (int s = 0; s < options.steps; ++s) {
    opt.zero_grad();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(forward(images), labels);
    losses.push_back(loss.item<double>());
    loss.backward();
    opt.step();
  }
  return losses;
}

std::pair<torch::Tensor, torch::Tensor> fashion_mnist_batch(int64_t n, int64_t size, bool train) {
  const std::string dir = data::kFashionMnistDir;
  const std::string prefix = train ? "/train" : "/t10k";
  const data::IdxArray images = data::read_idx(dir + prefix + "-images-idx3-ubyte.gz");
  const data::IdxArray labels = data::read_idx(dir + prefix + "-labels-idx1-ubyte.gz");
  const int64_t count = std::min<int64_t>(n, images.shape.at(0));
  torch::Tensor x = torch::from_blob(const_cast<uint8_t*>(images.data.data()), {count, 1, 28, 28}, torch::kUInt8)
                        .to(torch::kFloat32)
                        .div(255.0);
  x = torch::nn::functional::interpolate(
          x, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{size, size}).mode(torch::kBilinear).align_corners(false))
          .expand({count, 3, size, size})
          .contiguous();
  torch::Tensor y = torch::from_blob(const_cast<uint8_t*>(labels.data.data()), {count}, torch::kUInt8).to(torch::kInt64);
  return {x, y};
}

}  // namespace qv::fakequant
