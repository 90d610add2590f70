// Built instead of onednn_bench.cc when oneDNN is not found: the comparison benchmarks skip themselves.
#include "bench/onednn_bench.h"

#include <stdexcept>

namespace qv::bench {

struct OneDnnNetwork {};
void OneDnnDeleter::operator()(OneDnnNetwork* p) const { delete p; }
bool onednn_available() { return false; }
OneDnnHandle onednn_prepare(const Network&, int) { throw std::logic_error("oneDNN not built in"); }
double onednn_run(OneDnnNetwork&, int) { throw std::logic_error("oneDNN not built in"); }
std::vector<std::pair<std::string, double>> onednn_profile(OneDnnNetwork&, int, int) { throw std::logic_error("oneDNN not built in"); }
int onednn_layers(const OneDnnNetwork&) { return 0; }
std::string onednn_implementations(const OneDnnNetwork&) { return ""; }

}  // namespace qv::bench
