// The HTML report of the main job (`qverify --model M --config C --html FILE`), opened in a real
// browser: Debian's chromium, headless. The DOM after the page's script ran must hold the plots (one
// bar per layer with differences, a histogram per such layer, the heatmap cells of the worst layer),
// and a screenshot must show them. The binary's path comes from QVERIFY (tests/meson.build).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "harness/image_file.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs a shell command; stdout and stderr to files. Returns the exit status.
int sh(const std::string& cmd, const fs::path& out, const fs::path& err) {
  const std::string full = cmd + " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int raw = std::system(full.c_str());
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
}

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/bin:/bin");
    std::string d;
    while (std::getline(dirs, d, ':'))
      if (!d.empty() && ::access((fs::path(d) / name).c_str(), X_OK) == 0) return (fs::path(d) / name).string();
  }
  return "";
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size())) ++n;
  return n;
}

class HtmlReport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qverify_html_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(HtmlReport, OpensInChromiumWithThePlotsRendered) {
  const std::string chromium = find_chromium();
  ASSERT_FALSE(chromium.empty()) << "chromium is not installed: this test opens the HTML report in Debian's headless chromium; "
                                    "run scripts/setup.sh (the README's test command), which installs it";
  const char* exe = std::getenv("QVERIFY");
  ASSERT_NE(exe, nullptr) << "QVERIFY is not set";

  // The main job, with the report as JSON on stdout and as HTML in a file.
  const fs::path html = dir_ / "report.html";
  const int status = sh(std::string(exe) + " --model mobilenet_v2 --config pact.json --resolution 64 --json --html '" + html.string() + "'",
                        dir_ / "report.json", dir_ / "qverify.err");
  ASSERT_EQ(status, 0) << slurp(dir_ / "qverify.err");
  const nlohmann::json report = nlohmann::json::parse(slurp(dir_ / "report.json"));
  ASSERT_TRUE(fs::exists(html));
  for (const auto& e : fs::directory_iterator(dir_))  // written atomically: no temporary file left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();

  // Self-contained: nothing loaded from elsewhere.
  const std::string page = slurp(html);
  for (const char* external : {"<link", " src=", "@import", "url(", "https://"}) EXPECT_EQ(page.find(external), std::string::npos) << external;
  EXPECT_NE(page.find("mobilenet_v2"), std::string::npos);
  EXPECT_NE(page.find(report["requant"].get<std::string>()), std::string::npos);

  // What the plots must show, from the JSON report.
  size_t layers_differing = 0;
  int64_t worst_differing = 0;
  std::string worst;
  for (const auto& l : report["float32"]["layers"]) {
    const int64_t d = l["differing"].get<int64_t>();
    if (d > 0) ++layers_differing;
    if (d > worst_differing) worst_differing = d, worst = l["layer"].get<std::string>();
  }
  ASSERT_GT(layers_differing, 0u) << "the test needs differences to plot";

  // The DOM after chromium ran the page's script.
  const std::string common = "timeout 180 '" + chromium + "' --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir='" +
                             (dir_ / "profile").string() + "'";
  ASSERT_EQ(sh(common + " --dump-dom 'file://" + html.string() + "'", dir_ / "dom.html", dir_ / "chromium.err"), 0)
      << slurp(dir_ / "chromium.err");
  const std::string dom = slurp(dir_ / "dom.html");
  EXPECT_NE(dom.find("data-rendered=\"yes\""), std::string::npos) << "the page's script did not finish";
  EXPECT_EQ(count(dom, "<g class=\"bar\""), layers_differing);
  EXPECT_EQ(count(dom, "class=\"hbar\""), 9 * layers_differing);   // 0..7 and >= 8 LSB per layer
  EXPECT_EQ(count(dom, "class=\"hbar-total\""), 9u);
  EXPECT_GT(count(dom, "<rect x=\"") , layers_differing);
  // The heatmap: channels x columns cells of the worst layer, their counts summing to its differing elements.
  EXPECT_NE(dom.find("the worst layer (" + worst + ","), std::string::npos) << worst;
  const std::regex cell("class=\"cell\" data-count=\"([0-9]+)\"");
  size_t cells = 0;
  int64_t sum = 0;
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), cell); it != std::sregex_iterator(); ++it) ++cells, sum += std::stoll((*it)[1]);
  EXPECT_EQ(sum, worst_differing);
  const std::smatch m = [&] {
    std::smatch r;
    std::regex_search(page, r, std::regex("\"channels\":([0-9]+),\"columns\":([0-9]+)"));
    return r;
  }();
  ASSERT_EQ(m.size(), 3u);
  const size_t channels = std::stoul(m[1]), columns = std::stoul(m[2]);
  EXPECT_GT(channels, 1u);
  EXPECT_GE(columns, 1u);
  EXPECT_LE(columns, 64u);
  EXPECT_EQ(cells, channels * columns);
  // Explanations: the first boundary case, every unexplained one (none here).
  if (report["float32"]["explained"].get<int64_t>() > 0) {
    EXPECT_NE(dom.find("<pre class=\"boundary\">"), std::string::npos);
  }
  EXPECT_NE(dom.find("every difference explained"), std::string::npos);

  // A screenshot: the right size, not blank, with the bar colours of the plot in it.
  const fs::path png = dir_ / "report.png";
  ASSERT_EQ(sh(common + " --window-size=1200,1600 --screenshot='" + png.string() + "' 'file://" + html.string() + "'", dir_ / "shot.out",
               dir_ / "shot.err"),
            0)
      << slurp(dir_ / "shot.err");
  ASSERT_TRUE(fs::exists(png)) << slurp(dir_ / "shot.err");
  EXPECT_GT(fs::file_size(png), 20000u);
  const harness::RgbImage shot = harness::read_image(png.string());
  EXPECT_EQ(shot.width, 1200);
  EXPECT_EQ(shot.height, 1600);
  std::set<uint32_t> colours;
  size_t bar_pixels = 0;
  for (size_t i = 0; i + 2 < shot.pixels.size(); i += 3) {
    const uint32_t rgb = (uint32_t{shot.pixels[i]} << 16) | (uint32_t{shot.pixels[i + 1]} << 8) | shot.pixels[i + 2];
    colours.insert(rgb);
    if (rgb == 0x4e79a7 || rgb == 0x59a14f || rgb == 0xf28e2b || rgb == 0xe15759) ++bar_pixels;
  }
  EXPECT_GT(colours.size(), 50u) << "the screenshot is (nearly) blank";
  EXPECT_GT(bar_pixels, 500u) << "the bar plot's colours are not in the screenshot";
  if (const char* keep = std::getenv("QV_HTML_SCREENSHOT")) fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
}

TEST_F(HtmlReport, UnwritableFileIsBadInput) {
  const char* exe = std::getenv("QVERIFY");
  ASSERT_NE(exe, nullptr) << "QVERIFY is not set";
  const int status = sh(std::string(exe) + " --model mobilenet_v2 --config pact.json --resolution 64 --no-optimized --html '" +
                            (dir_ / "missing" / "report.html").string() + "'",
                        dir_ / "out", dir_ / "err");
  EXPECT_EQ(status, 2) << slurp(dir_ / "err");
  EXPECT_NE(slurp(dir_ / "err").find("report.html"), std::string::npos) << slurp(dir_ / "err");
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
}

}  // namespace
}  // namespace qv
