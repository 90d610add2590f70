#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "integer/evaluator.h"
#include "ir/synthetic.h"
#include "reference/evaluator.h"

namespace qv {
namespace {

TEST(IntegerNetworks, MobileNetV2Small) {
  const Network net = synthetic_mobilenet_v2(32, 1);
  const auto in = synthetic_inputs(net, 2);
  const Trace ref = evaluate_reference(net, in);
  for (const char* isa : {"scalar", "avx2", "avx512vnni"}) {
    const Trace opt = integer::evaluate_optimized(net, in, {.threads = 2, .isa = isa});
    ASSERT_EQ(ref.size(), opt.size());
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_TRUE(ref[i].value == opt[i].value) << isa << " " << ref[i].node;
  }
}

}  // namespace
}  // namespace qv
