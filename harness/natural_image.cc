#include "harness/natural_image.h"

#include <algorithm>
#include <random>

namespace qv::harness {

std::vector<uint8_t> natural_image(uint64_t seed, int height, int width) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](int lo, int hi) { return static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1)) + lo; };
  // Background: a sky-to-ground gradient whose colours depend on the seed.
  int top[3], bottom[3];
  for (int c = 0; c < 3; ++c) top[c] = uniform(60, 230), bottom[c] = uniform(20, 160);
  std::vector<int> img(static_cast<size_t>(height * width * 3));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        img[static_cast<size_t>((y * width + x) * 3 + c)] = top[c] + (bottom[c] - top[c]) * y / std::max(1, height - 1);
  // Objects: ellipses with soft edges and a shading gradient.
  const int objects = uniform(3, 7);
  for (int o = 0; o < objects; ++o) {
    const int cy = uniform(0, height - 1), cx = uniform(0, width - 1);
    const int ry = uniform(height / 12 + 1, height / 3 + 1), rx = uniform(width / 12 + 1, width / 3 + 1);
    int col[3];
    for (int& v : col) v = uniform(0, 255);
    for (int y = std::max(0, cy - ry); y < std::min(height, cy + ry + 1); ++y)
      for (int x = std::max(0, cx - rx); x < std::min(width, cx + rx + 1); ++x) {
        // d = (dy/ry)^2 + (dx/rx)^2 in 1/1024 units; inside when d < 1024, softened over the last 20 %.
        const int64_t dy = y - cy, dx = x - cx;
        const int64_t d = (dy * dy * 1024) / (int64_t{ry} * ry) + (dx * dx * 1024) / (int64_t{rx} * rx);
        if (d >= 1024) continue;
        const int64_t w = d < 820 ? 256 : (1024 - d) * 256 / 204;  // edge blend weight /256
        const int shade = static_cast<int>(dy * 40 / ry);
        for (int c = 0; c < 3; ++c) {
          int& p = img[static_cast<size_t>((y * width + x) * 3 + c)];
          p = static_cast<int>((p * (256 - w) + (col[c] - shade) * w) / 256);
        }
      }
  }
  // Texture (low-amplitude stripes) and sensor noise.
  const int period = uniform(5, 17);
  std::vector<uint8_t> out(img.size());
  for (size_t i = 0; i < img.size(); ++i) {
    const int x = static_cast<int>((i / 3) % static_cast<size_t>(width));
    const int stripe = (x % period) < period / 2 ? 4 : -4;
    const int noise = uniform(-6, 6);
    out[i] = static_cast<uint8_t>(std::clamp(img[i] + stripe + noise, 0, 255));
  }
  return out;
}

}  // namespace qv::harness
