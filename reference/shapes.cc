#include "reference/shapes.h"

#include <stdexcept>
#include <string>
#include <type_traits>

namespace qv::reference {

namespace {

// The message is a literal or a function that builds it: only on failure, since the shapes are checked
// per node on every evaluation (building the strings was ~2% of a MobileNetV2 evaluation).
template <class Message>
void require(bool ok, const Message& what) {
  if (ok) return;
  if constexpr (std::is_invocable_v<Message>)
    throw std::invalid_argument(what());
  else
    throw std::invalid_argument(what);
}

}  // namespace

int64_t window_output_size(int64_t in, int pad_before, int pad_after, int kernel, int stride, int dilation) {
  require(kernel >= 1 && stride >= 1 && dilation >= 1 && pad_before >= 0 && pad_after >= 0,
          "window parameters must be positive (padding non-negative)");
  const int64_t span = int64_t{dilation} * (kernel - 1) + 1;
  const int64_t padded = in + pad_before + pad_after;
  require(padded >= span,
          [&] { return "window of extent " + std::to_string(span) + " exceeds padded input of " + std::to_string(padded); });
  return (padded - span) / stride + 1;
}

Shape conv2d_output_shape(const Conv2dOp& op, const Shape& in) {
  require(in.size() == 4, [&] { return "conv2d input must be NCHW, got " + to_string(in); });
  require(op.weight.rank() == 4, [&] { return "conv2d weight must be OIHW, got " + to_string(op.weight.shape); });
  require(op.groups >= 1, "conv2d groups must be >= 1");
  const int64_t O = op.weight.dim(0);
  require(in[1] % op.groups == 0 && O % op.groups == 0, "conv2d channels must be divisible by groups");
  require(op.weight.dim(1) * op.groups == in[1], [&] {
    return "conv2d weight " + to_string(op.weight.shape) + " does not match input " + to_string(in) + " with groups " +
           std::to_string(op.groups);
  });
  require(!op.bias || (op.bias->shape.size() == 1 && op.bias->shape[0] == O), "conv2d bias must be [O]");
  return {in[0], O,
          window_output_size(in[2], op.pad_top, op.pad_bottom, static_cast<int>(op.weight.dim(2)), op.stride_h, op.dilation_h),
          window_output_size(in[3], op.pad_left, op.pad_right, static_cast<int>(op.weight.dim(3)), op.stride_w, op.dilation_w)};
}

Shape linear_output_shape(const LinearOp& op, const Shape& in) {
  require(in.size() == 2, [&] { return "linear input must be NC, got " + to_string(in); });
  require(op.weight.rank() == 2 && op.weight.dim(1) == in[1],
          [&] { return "linear weight " + to_string(op.weight.shape) + " does not match input " + to_string(in); });
  require(!op.bias || op.bias->shape == Shape{op.weight.dim(0)}, "linear bias must be [O]");
  return {in[0], op.weight.dim(0)};
}

Shape max_pool2d_output_shape(const MaxPool2dOp& op, const Shape& in) {
  require(in.size() == 4, [&] { return "max_pool2d input must be NCHW, got " + to_string(in); });
  // Padding never wins, but every window must still see one real input.
  require(op.pad_top < op.kernel_h && op.pad_bottom < op.kernel_h && op.pad_left < op.kernel_w && op.pad_right < op.kernel_w,
          "max_pool2d padding must be smaller than the kernel");
  return {in[0], in[1], window_output_size(in[2], op.pad_top, op.pad_bottom, op.kernel_h, op.stride_h, 1),
          window_output_size(in[3], op.pad_left, op.pad_right, op.kernel_w, op.stride_w, 1)};
}

Shape avg_pool2d_output_shape(const AvgPool2dOp& op, const Shape& in) {
  require(in.size() == 4, [&] { return "avg_pool2d input must be NCHW, got " + to_string(in); });
  require(op.shift >= 0, "avg_pool2d shift must be >= 0");
  return {in[0], in[1], window_output_size(in[2], 0, 0, op.kernel_h, op.stride_h, 1),
          window_output_size(in[3], 0, 0, op.kernel_w, op.stride_w, 1)};
}

Shape hadamard_output_shape(const HadamardOp& op, const Shape& in) {
  require(in.size() == 2, [&] { return "hadamard input must be NC, got " + to_string(in); });
  require(op.out_features >= 1, "hadamard out_features must be >= 1");
  return {in[0], op.out_features};
}

Shape flatten_output_shape(const Shape& in) {
  require(in.size() >= 1, "flatten input must have a batch axis");
  return {in[0], element_count(Shape(in.begin() + 1, in.end()))};
}

}  // namespace qv::reference
