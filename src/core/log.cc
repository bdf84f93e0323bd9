#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace pillion::core {

bool set_log_level(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return false;
  }
  spdlog::set_level(parsed);
  return true;
}

void init_logging(std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("pillion");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%Y-%m-%dT%H:%M:%S.%e] [%l] %v");
  set_log_level(level);
}

}  // namespace pillion::core
