// Where the unit tests find the default model: $SUANLI_TEST_MODEL, else the
// model cache ($SUANLI_HOME, default ~/.cache/suanli/models) that `make test`
// fills with `suanli pull default` before running them.
#pragma once

#include <cstdlib>
#include <string>

namespace suanli::testing {

inline std::string default_model_path() {
  if (const char* p = std::getenv("SUANLI_TEST_MODEL")) return p;
  std::string home;
  if (const char* h = std::getenv("SUANLI_HOME"); h && *h) {
    home = h;
  } else if (const char* h2 = std::getenv("HOME")) {
    home = std::string(h2) + "/.cache/suanli/models";
  }
  return home + "/SmolLM2-135M-Instruct.Q4_1.gguf";
}

}  // namespace suanli::testing
