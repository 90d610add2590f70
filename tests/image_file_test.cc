// PNG/JPEG inputs: the decoded pixels equal the ones the fixture generator wrote (and its .npy twin),
// and the preprocessing geometry (shorter side to R * 256/224, central crop) copies pixels exactly when
// no resampling is needed and keeps a constant image constant.
#include <gtest/gtest.h>

#include "harness/image_file.h"
#include "ir/error.h"
#include "vectors/npy.h"

namespace qv::harness {
namespace {

const std::string kDir = std::string(QV_FIXTURE_DIR) + "/images/";

TEST(ImageFile, PngDecodesToTheGeneratorsPixels) {
  const RgbImage img = read_image(kDir + "gradient_80x60.png");
  ASSERT_EQ(img.width, 80);
  ASSERT_EQ(img.height, 60);
  const IntTensor npy = read_npy(kDir + "gradient_80x60.npy");
  ASSERT_EQ(npy.data.size(), img.pixels.size());
  for (size_t i = 0; i < img.pixels.size(); ++i) ASSERT_EQ(img.pixels[i], npy.data[i]) << i;
  // The generator's formula, independently: pixel (y, x) = (3x, 4y, x + y).
  EXPECT_EQ(img.pixels[(7 * 80 + 11) * 3 + 0], 33);
  EXPECT_EQ(img.pixels[(7 * 80 + 11) * 3 + 1], 28);
  EXPECT_EQ(img.pixels[(7 * 80 + 11) * 3 + 2], 18);
}

TEST(ImageFile, CropWithoutResamplingCopiesPixels) {
  const RgbImage img = read_image(kDir + "gradient_80x60.png");
  // R = 52: the shorter side 60 is already ceil(52 * 256 / 224), so only the central crop remains.
  const RgbImage out = resize_and_crop(img, 52);
  ASSERT_EQ(out.width, 52);
  for (int y = 0; y < 52; ++y)
    for (int x = 0; x < 52; ++x)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(out.pixels[static_cast<size_t>((y * 52 + x) * 3 + c)], img.pixels[static_cast<size_t>(((y + 4) * 80 + x + 14) * 3 + c)]);
}

TEST(ImageFile, ResizeKeepsAConstantImageConstant) {
  RgbImage img;
  img.height = 37, img.width = 91;
  img.pixels.assign(static_cast<size_t>(37 * 91 * 3), 201);
  const RgbImage out = resize_and_crop(img, 224);
  ASSERT_EQ(out.height, 224);
  for (uint8_t p : out.pixels) ASSERT_EQ(p, 201);
}

TEST(ImageFile, BadFilesAreInputErrorsNamingTheFile) {
  for (const std::string& f : {kDir + "absent.png", kDir + "gradient_80x60.npy"}) {
    try {
      read_image(f);
      FAIL() << f;
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), f);
    }
  }
}

}  // namespace
}  // namespace qv::harness
