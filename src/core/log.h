#pragma once
// The diagnostic log (not the access log): spdlog to stderr, one logger for the process.
#include <spdlog/spdlog.h>

#include <string_view>

namespace pillion::core {

// Sets the level from a name (trace, debug, info, warn, error, off); false when unknown.
bool set_log_level(std::string_view level);
void init_logging(std::string_view level);

}  // namespace pillion::core
