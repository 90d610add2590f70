// Test entry point. Every run of a property test uses a printed seed: when RC_PARAMS names none, one is
// drawn here and put into RC_PARAMS before rapidcheck reads its configuration, so a failing run is
// replayed with RC_PARAMS="seed=N" (rapidcheck also prints the shrunk counterexample).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* given = std::getenv("RC_PARAMS");
  std::string params = given ? given : "";
  if (params.find("seed=") == std::string::npos) {
    const unsigned long long seed = (static_cast<unsigned long long>(std::random_device{}()) << 32) ^ std::random_device{}();
    if (!params.empty()) params.push_back(' ');
    params.append("seed=");
    params.append(std::to_string(seed));
    setenv("RC_PARAMS", params.c_str(), 1);
  }
  std::printf("rapidcheck: RC_PARAMS=\"%s\" (rerun with the same value to replay)\n", params.c_str());
  std::fflush(stdout);
  return RUN_ALL_TESTS();
}
