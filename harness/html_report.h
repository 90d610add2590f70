// The cross-check report as one self-contained HTML file (`qverify --model M --config C --html FILE`):
// a summary, a per-layer bar plot of the differing elements by class, per-layer histograms of
// |float - integer| in LSB, a channel-by-position heatmap of the worst layer, and the explanation of
// the first boundary case and of every unexplained difference. Inline CSS, inline JavaScript that
// draws the plots as SVG from the data embedded in the page; nothing is fetched from the network.
#pragma once

#include <string>

#include "harness/pipeline.h"

namespace qv::harness {

// The whole document.
std::string html_report(const PipelineResult& r);

// Writes html_report(r) to `path` atomically (a temporary file in the same folder, then rename): an
// interrupted run leaves the old file or none. Throws InputError naming the file when it cannot be written.
void write_html_report(const std::string& path, const PipelineResult& r);

}  // namespace qv::harness
