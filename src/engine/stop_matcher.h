// Stop strings over streamed text: text is released only once it can no
// longer be the start of a stop string, so a stop string is never emitted,
// even when it spans several tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace suanli {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds text; returns what may be emitted now. When a stop string completes,
  // *stopped is set and the returned text ends right before it (the stop
  // string and whatever followed are dropped).
  std::string push(std::string_view text, bool* stopped);
  // End of generation without a stop: the held-back text.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
};

}  // namespace suanli
