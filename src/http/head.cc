#include "http/head.h"

namespace pillion::http {

std::optional<std::string_view> Head::find(std::string_view name) const {
  for (const auto& field : fields) {
    if (iequals(field.name, name)) {
      return field.value;
    }
  }
  return std::nullopt;
}

}  // namespace pillion::http
