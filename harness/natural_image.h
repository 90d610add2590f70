// The embedded default input: a seeded, natural-image-like RGB picture (smooth illumination, a few
// soft-edged objects of different colours, texture and sensor noise), 8-bit, HWC. Deterministic for a
// seed and resolution on every machine (integer arithmetic and a fixed generator).
#pragma once

#include <cstdint>
#include <vector>

namespace qv::harness {

std::vector<uint8_t> natural_image(uint64_t seed, int height, int width);

}  // namespace qv::harness
