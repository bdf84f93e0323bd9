#include "logs/bulk_response.h"

#include <gtest/gtest.h>

namespace pillion::logs {
namespace {

TEST(BulkResponse, SortsItemsIntoStoredRetryRejected) {
  BulkItems items;
  ASSERT_TRUE(parse_bulk_response(
      R"({"errors":true,"items":[{"index":{"status":201}},{"index":{"status":429,
      "error":{"type":"es_rejected_execution_exception","reason":"full"}}},
      {"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}},
      {"create":{"status":409}},{"index":{"status":503}}]})",
      5, true, items));
  EXPECT_EQ(items.outcomes, (std::vector<ItemOutcome>{ItemOutcome::kStored, ItemOutcome::kRetry,
                                                      ItemOutcome::kRejected, ItemOutcome::kStored,
                                                      ItemOutcome::kRetry}));
  EXPECT_EQ(items.reasons[2], "mapper_parsing_exception: bad");
  EXPECT_EQ(items.reasons[4], "status 503");
}

TEST(BulkResponse, ConflictIsARejectionForIndex) {
  BulkItems items;
  ASSERT_TRUE(parse_bulk_response(R"({"errors":true,"items":[{"index":{"status":409}}]})", 1, false,
                                  items));
  EXPECT_EQ(items.outcomes[0], ItemOutcome::kRejected);
}

TEST(BulkResponse, WrongShapeMeansRetryEverything) {
  BulkItems items;
  EXPECT_FALSE(parse_bulk_response("not json", 1, false, items));
  EXPECT_FALSE(parse_bulk_response(R"({"errors":false,"items":[]})", 1, false, items));
  EXPECT_FALSE(parse_bulk_response(R"({"items":[{"index":{}}]})", 1, false, items));
  EXPECT_FALSE(parse_bulk_response(R"({"errors":true})", 1, false, items));
  EXPECT_TRUE(parse_bulk_response(R"({"errors":false})", 2, false, items));
  EXPECT_EQ(items.outcomes.size(), 2u);
}

}  // namespace
}  // namespace pillion::logs
