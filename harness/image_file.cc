#include "harness/image_file.h"

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "ir/error.h"

namespace qv::harness {

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

RgbImage read_png(const std::string& path, std::FILE* f) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) throw InputError(path, "", "cannot allocate a PNG reader");
  RgbImage img;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw InputError(path, "", "not a readable PNG image (corrupt or truncated)");
  }
  png_init_io(png, f);
  png_read_info(png, info);
  png_set_expand(png);
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_gray_to_rgb(png);
  png_read_update_info(png, info);
  img.width = static_cast<int>(png_get_image_width(png, info));
  img.height = static_cast<int>(png_get_image_height(png, info));
  if (png_get_rowbytes(png, info) != static_cast<size_t>(img.width) * 3) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw InputError(path, "", "unsupported PNG pixel format");
  }
  img.pixels.resize(static_cast<size_t>(img.width) * img.height * 3);
  rows.resize(static_cast<size_t>(img.height));
  for (int y = 0; y < img.height; ++y) rows[static_cast<size_t>(y)] = img.pixels.data() + static_cast<size_t>(y) * img.width * 3;
  png_read_image(png, rows.data());
  png_destroy_read_struct(&png, &info, nullptr);
  return img;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

RgbImage read_jpeg(const std::string& path, std::FILE* f) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  RgbImage img;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw InputError(path, "", std::string("not a readable JPEG image: ") + err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  img.width = static_cast<int>(cinfo.output_width);
  img.height = static_cast<int>(cinfo.output_height);
  img.pixels.resize(static_cast<size_t>(img.width) * img.height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = img.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * img.width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return img;
}

}  // namespace

RgbImage read_image(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw InputError(path, "", std::string("cannot open: ") + std::strerror(errno));
  unsigned char magic[8] = {};
  const size_t n = std::fread(magic, 1, sizeof magic, f.get());
  std::rewind(f.get());
  if (n >= 8 && png_sig_cmp(magic, 0, 8) == 0) return read_png(path, f.get());
  if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) return read_jpeg(path, f.get());
  throw InputError(path, "", "not a PNG or JPEG image (expected .png, .jpg/.jpeg or .npy)");
}

RgbImage resize_and_crop(const RgbImage& in, int resolution) {
  if (in.height < 1 || in.width < 1) throw InputError("", "", "empty image");
  // Shorter side to resolution * 256 / 224, bilinear with 16.16 fixed-point sample positions.
  const int64_t target = (int64_t{resolution} * 256 + 223) / 224;
  const bool tall = in.height > in.width;
  const int64_t rw = tall ? target : std::max<int64_t>(1, (int64_t{in.width} * target + in.height / 2) / in.height);
  const int64_t rh = tall ? std::max<int64_t>(1, (int64_t{in.height} * target + in.width / 2) / in.width) : target;
  const int64_t top = (rh - resolution) / 2, left = (rw - resolution) / 2;
  RgbImage out;
  out.height = out.width = resolution;
  out.pixels.resize(static_cast<size_t>(resolution) * resolution * 3);
  for (int y = 0; y < resolution; ++y) {
    // Source coordinate of the pixel centre, in 1/65536: ((y + top + 0.5) * H / rh - 0.5).
    const int64_t sy = std::clamp<int64_t>(((2 * (y + top) + 1) * int64_t{in.height} * 32768) / rh - 32768, 0, int64_t{in.height - 1} * 65536);
    const int64_t y0 = sy >> 16, fy = sy & 0xFFFF, y1 = std::min<int64_t>(y0 + 1, in.height - 1);
    for (int x = 0; x < resolution; ++x) {
      const int64_t sx = std::clamp<int64_t>(((2 * (x + left) + 1) * int64_t{in.width} * 32768) / rw - 32768, 0, int64_t{in.width - 1} * 65536);
      const int64_t x0 = sx >> 16, fx = sx & 0xFFFF, x1 = std::min<int64_t>(x0 + 1, in.width - 1);
      for (int c = 0; c < 3; ++c) {
        auto p = [&](int64_t yy, int64_t xx) { return int64_t{in.pixels[static_cast<size_t>((yy * in.width + xx) * 3 + c)]}; };
        const int64_t top_row = p(y0, x0) * (65536 - fx) + p(y0, x1) * fx;
        const int64_t bottom_row = p(y1, x0) * (65536 - fx) + p(y1, x1) * fx;
        const int64_t v = (top_row * (65536 - fy) + bottom_row * fy + (int64_t{1} << 31)) >> 32;
        out.pixels[static_cast<size_t>((y * resolution + x) * 3 + c)] = static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255));
      }
    }
  }
  return out;
}

}  // namespace qv::harness
