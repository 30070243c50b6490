// JSON output of the tool: nlohmann-json, keys in the order written. Strings are escaped, invalid
// UTF-8 is replaced rather than thrown on, and non-finite numbers become null, which every JSON
// reader accepts (printf's "nan" is not JSON).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tinytorch::cli {

using Json = nlohmann::ordered_json;

// One line, compact (indent < 0), or indented by `indent` spaces.
inline std::string json_text(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace tinytorch::cli
