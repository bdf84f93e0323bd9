#include "logs/json_text.h"

#include <gtest/gtest.h>

namespace pillion::logs {
namespace {

std::string quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(JsonText, EscapesControlAndQuotes) {
  EXPECT_EQ(quoted("a\"b\\c\n\t\x01"), R"("a\"b\\c\n\t\u0001")");
}

TEST(JsonText, KeepsValidUtf8AndReplacesInvalid) {
  EXPECT_EQ(quoted("\xe2\x82\xac"), "\"\xe2\x82\xac\"");         // euro sign
  EXPECT_EQ(quoted("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");  // a UTF-16 surrogate
  EXPECT_EQ(quoted("\xc0\xaf"), R"("\ufffd\ufffd")");            // overlong
  EXPECT_EQ(quoted("\xf0\x9f\x98"), R"("\ufffd\ufffd\ufffd")");  // cut short
}

TEST(JsonText, Unescaped) {
  std::string out;
  append_json_unescaped(out, R"(a \"b\" \\ \n)");
  EXPECT_EQ(out, R"("a \"b\" \\ \\n")");
}

}  // namespace
}  // namespace pillion::logs
