// same_network: identical networks compare equal, and a change to any single field is reported as
// the first difference with the node and the field.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "ir/compare.h"
#include "tests/support/ir_files.h"

namespace qv {
namespace {

using qv::testing::every_op_network;

template <class T>
T& op_of(Network& net, size_t node) {
  return std::get<T>(net.nodes[node].op);
}
template <class F>
F& requant_of(Network& net, size_t node) {
  return std::get<F>(op_of<RequantOp>(net, node).requant.form);
}

TEST(SameNetwork, EqualCopiesCompareEqual) {
  const Network a = every_op_network(), b = every_op_network();
  std::string difference = "unchanged";
  EXPECT_TRUE(same_network(a, b, &difference));
  EXPECT_EQ(difference, "");
  EXPECT_TRUE(same_network(a, a));
}

struct Change {
  const char* name;
  std::function<void(Network&)> apply;
  const char* reported;  // the exact start of the first difference
};

const Change kChanges[] = {
    {"network name", [](Network& n) { n.name = "other"; }, "name: 'every_op' vs 'other'"},
    {"output", [](Network& n) { n.output = "fc"; }, "output: 'had' vs 'fc'"},
    {"metadata value", [](Network& n) { n.metadata["model"] = "x"; }, "metadata['model']: 'every_op' vs 'x'"},
    {"metadata key", [](Network& n) { n.metadata["seed"] = "1"; }, "metadata['seed']: absent vs '1'"},
    {"node removed", [](Network& n) { n.nodes.pop_back(); }, "nodes: 13 vs 12 nodes"},
    {"node name", [](Network& n) { n.nodes[3].name = "p"; }, "nodes[3] 'pool': name: 'pool' vs 'p'"},
    {"input name", [](Network& n) { n.nodes[5].inputs[1] = "pool"; }, "nodes[5] 'sat': inputs[1]: 'avg' vs 'pool'"},
    {"output shape", [](Network& n) { n.nodes[7].output.shape = {1, 15}; }, "nodes[7] 'flat': output.shape: [1, 16] vs [1, 15]"},
    {"output type", [](Network& n) { n.nodes[6].output.type = IntType{11, true}; }, "nodes[6] 'addrq': output.type: int10 vs int11"},
    {"scale sign of zero", [](Network& n) { n.nodes[8].output.scale[2] = -0.0; },
     "nodes[8] 'fc': output.scale[2]: 0.0030000000000000001 (bits 0x3f689374bc6a7efa) vs -0"},
    {"scale last bit",
     [](Network& n) {
       auto& s = op_of<Conv2dOp>(n, 1).weight.scale[3];
       s = std::nextafter(s, 1.0);
     },
     "nodes[1] 'conv': weight.scale[3]: 0.33333333333333331 (bits 0x3fd5555555555555) vs 0.33333333333333337"},
    {"weight element", [](Network& n) { op_of<Conv2dOp>(n, 1).weight.data[7] += 1; }, "nodes[1] 'conv': weight.data[7]: "},
    {"weight layout", [](Network& n) { op_of<LinearOp>(n, 8).weight.layout = "IO"; }, "nodes[8] 'fc': weight.layout: 'OI' vs 'IO'"},
    {"bias dropped", [](Network& n) { op_of<LinearOp>(n, 8).bias.reset(); }, "nodes[8] 'fc': bias: present vs absent"},
    {"pad_value", [](Network& n) { op_of<Conv2dOp>(n, 1).pad_value = 0; }, "nodes[1] 'conv': pad_value: 128 vs 0"},
    {"dilation", [](Network& n) { op_of<Conv2dOp>(n, 1).dilation_w = 2; }, "nodes[1] 'conv': dilation[1]: 1 vs 2"},
    {"pool padding", [](Network& n) { op_of<MaxPool2dOp>(n, 3).pad_right = 1; }, "nodes[3] 'pool': padding[3]: 0 vs 1"},
    {"avg rounding", [](Network& n) { op_of<AvgPool2dOp>(n, 4).rounding = Rounding::half_even; },
     "nodes[4] 'avg': rounding: floor vs half_even"},
    {"branch delta", [](Network& n) { std::get<ExactRequant>(op_of<AddRequantOp>(n, 6).branches[1].form).delta[2] += Rational(1, 3); },
     "nodes[6] 'addrq': branches[1].delta[2]: 0 vs 1/3"},
    {"hadamard negate", [](Network& n) { op_of<HadamardOp>(n, 12).negate = false; }, "nodes[12] 'had': negate: true vs false"},
    {"requant clamp", [](Network& n) { op_of<RequantOp>(n, 2).requant.hi = 254; }, "nodes[2] 'rq_exact': requant.hi: 255 vs 254"},
    {"exact alpha", [](Network& n) { requant_of<ExactRequant>(n, 2).alpha[1] = Rational(4, 4096); },
     "nodes[2] 'rq_exact': requant.alpha[1]: -1/1024 vs 1/1024"},
    {"mul_add_shift add", [](Network& n) { requant_of<MulAddShiftRequant>(n, 9).add[0] -= 1; }, "nodes[9] 'rq_mas': requant.add[0]: "},
    {"threshold", [](Network& n) { requant_of<ThresholdRequant>(n, 10).thresholds[5][200] += 1; },
     "nodes[10] 'rq_th': requant.thresholds[5][200]: "},
    {"threshold sign", [](Network& n) { requant_of<ThresholdRequant>(n, 10).sign[0] = 0; }, "nodes[10] 'rq_th': requant.sign[0]: 1 vs 0"},
    {"fixed_point shift", [](Network& n) { requant_of<FixedPointRequant>(n, 11).shift[4] += 1; }, "nodes[11] 'rq_fp': requant.shift[4]: "},
    {"fixed_point rounding", [](Network& n) { requant_of<FixedPointRequant>(n, 11).double_rounding = false; },
     "nodes[11] 'rq_fp': requant.double_rounding: true vs false"},
    {"requant form", [](Network& n) { op_of<RequantOp>(n, 9).requant = op_of<RequantOp>(n, 10).requant; },
     "nodes[9] 'rq_mas': requant.form: mul_add_shift vs thresholds"},
    {"op kind", [](Network& n) { n.nodes[7].op = AddSaturatingOp{}; }, "nodes[7] 'flat': op: flatten vs add_saturating"},
};

TEST(SameNetwork, ReportsTheFirstDifferenceByNodeAndField) {
  const Network original = every_op_network();
  for (const Change& c : kChanges) {
    Network changed = every_op_network();
    c.apply(changed);
    std::string difference;
    EXPECT_FALSE(same_network(original, changed, &difference)) << c.name;
    EXPECT_EQ(difference.rfind(c.reported, 0), 0u) << c.name << ": reported '" << difference << "'";
    EXPECT_FALSE(same_network(original, changed)) << c.name << " (without a report)";
  }
}

TEST(SameNetwork, TheFirstOfTwoDifferencesIsReported) {
  Network a = every_op_network(), b = every_op_network();
  b.nodes[12].name = "h";
  op_of<Conv2dOp>(b, 1).groups = 2;
  std::string difference;
  EXPECT_FALSE(same_network(a, b, &difference));
  EXPECT_EQ(difference, "nodes[1] 'conv': groups: 4 vs 2");
}

}  // namespace
}  // namespace qv
