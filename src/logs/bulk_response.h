#pragma once
// Reads an Elasticsearch/OpenSearch `_bulk` response: which items were stored, which may be
// retried (429, 5xx) and which were refused for good (other 4xx: mapping errors and the like).
#include <string>
#include <string_view>
#include <vector>

namespace pillion::logs {

enum class ItemOutcome { kStored, kRetry, kRejected };

struct BulkItems {
  std::vector<ItemOutcome> outcomes;  // one per item, in request order
  std::vector<std::string> reasons;   // the error of each item that was not stored ("" if stored)
};

// Returns false when the body is not a bulk response for `expected` items (the caller then
// retries the whole request). A 409 (version conflict) counts as stored when `conflict_is_ok`
// (action "create": the document is already there, from an earlier attempt).
bool parse_bulk_response(std::string_view body, size_t expected, bool conflict_is_ok,
                         BulkItems& items);

}  // namespace pillion::logs
