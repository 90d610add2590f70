// Reading PNG and JPEG images (libpng, libjpeg-turbo) and the models' preprocessing geometry: resize
// the shorter side to R * 256 / 224 (bilinear, fixed-point, deterministic) and crop the central R x R,
// as torchvision's ImageNet evaluation transform does. Output: 8-bit RGB, HWC.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qv::harness {

struct RgbImage {
  int height = 0, width = 0;
  std::vector<uint8_t> pixels;  // HWC, RGB
};

// Throws InputError naming the file for unreadable, truncated or unsupported images.
RgbImage read_image(const std::string& path);

// Resize (shorter side to resolution * 256 / 224) and center-crop to resolution x resolution.
RgbImage resize_and_crop(const RgbImage& in, int resolution);

}  // namespace qv::harness
