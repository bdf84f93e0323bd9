#include "logs/bulk_response.h"

#include <nlohmann/json.hpp>

namespace pillion::logs {

bool parse_bulk_response(std::string_view body, size_t expected, bool conflict_is_ok,
                         BulkItems& items) {
  items.outcomes.clear();
  items.reasons.clear();
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return false;
  }
  const auto errors = json.find("errors");
  const auto list = json.find("items");
  if (list == json.end() || !list->is_array() || list->size() != expected) {
    // Without items the only safe reading of success is "errors": false.
    if (errors != json.end() && errors->is_boolean() && !errors->get<bool>() &&
        list == json.end()) {
      items.outcomes.assign(expected, ItemOutcome::kStored);
      items.reasons.assign(expected, "");
      return true;
    }
    return false;
  }
  for (const auto& item : *list) {
    // Each item is {"<action>": {"status": N, "error": {...}}}.
    if (!item.is_object() || item.size() != 1 || !item.begin()->is_object()) {
      return false;
    }
    const auto& result = *item.begin();
    const auto status_it = result.find("status");
    if (status_it == result.end() || !status_it->is_number_integer()) {
      return false;
    }
    const int status = status_it->get<int>();
    std::string reason;
    if (const auto error = result.find("error"); error != result.end()) {
      if (error->is_object()) {
        reason = error->value("type", std::string{}) + ": " + error->value("reason", std::string{});
      } else {
        reason = error->dump();
      }
    }
    if ((status >= 200 && status < 300) || (status == 409 && conflict_is_ok)) {
      items.outcomes.push_back(ItemOutcome::kStored);
      reason.clear();
    } else if (status == 429 || status >= 500) {
      items.outcomes.push_back(ItemOutcome::kRetry);
    } else {
      items.outcomes.push_back(ItemOutcome::kRejected);
    }
    items.reasons.push_back(reason.empty() && items.outcomes.back() != ItemOutcome::kStored
                                ? "status " + std::to_string(status)
                                : reason);
  }
  return true;
}

}  // namespace pillion::logs
