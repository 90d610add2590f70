// Test entry point: prints the rapidcheck seed so every property failure can be replayed
// (RC_PARAMS="seed=N" reruns the same cases; rapidcheck also prints the shrunk counterexample).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* params = std::getenv("RC_PARAMS");
  std::printf("rapidcheck: RC_PARAMS=%s (each property prints its seed as 'Using configuration: seed=...')\n",
              params ? params : "<unset>");
  return RUN_ALL_TESTS();
}
