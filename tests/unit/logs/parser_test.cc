#include "logs/parser.h"

#include <gtest/gtest.h>

#include "logs/regex_parser.h"

namespace pillion::logs {
namespace {

struct Result {
  bool ok;
  std::string json;
};

Result run(const ParserConfig& config, std::string_view record) {
  auto parser = make_parser(config);
  std::string out;
  DocBuilder doc(out);
  doc.begin();
  const Timestamp now{1700000000, 0, 0};
  const bool ok = parser->parse(record, now, doc);
  doc.end();
  return {ok, out};
}

ParserConfig keyvalue() {
  return ParserConfig{};
}

TEST(KeyValueParser, SeedLine) {
  EXPECT_EQ(run(keyvalue(), "2024-01-15 14:32:01 INFO order_id=ORD-9921 status=FULFILLED").json,
            R"({"@timestamp":"2024-01-15T14:32:01Z","level":"INFO","order_id":"ORD-9921",)"
            R"("status":"FULFILLED"})"
            "\n");
}

TEST(KeyValueParser, QuotedValuesWithEscapes) {
  EXPECT_EQ(run(keyvalue(), R"(2024-01-15 14:32:01 ERROR msg="a \"b\" c\\d" path=/x)").json,
            R"({"@timestamp":"2024-01-15T14:32:01Z","level":"ERROR","msg":"a \"b\" c\\d",)"
            R"("path":"/x"})"
            "\n");
}

TEST(KeyValueParser, UnterminatedQuoteTakesTheRest) {
  EXPECT_EQ(run(keyvalue(), R"(2024-01-15 14:32:01 INFO msg="no end)").json,
            R"({"@timestamp":"2024-01-15T14:32:01Z","level":"INFO","msg":"no end"})"
            "\n");
}

TEST(KeyValueParser, FreeWordsBecomeMessageAndContinuationLinesFollow) {
  EXPECT_EQ(run(keyvalue(), "2024-01-15 14:32:01 [WARN] payment slow ms=300\n  at x()").json,
            R"({"@timestamp":"2024-01-15T14:32:01Z","level":"WARN","ms":"300",)"
            R"x("message":"payment slow\n  at x()"})x"
            "\n");
}

TEST(KeyValueParser, DuplicateKeysKeepTheFirst) {
  EXPECT_EQ(run(keyvalue(), "2024-01-15 14:32:01 INFO a=1 a=2 level=x").json,
            R"({"@timestamp":"2024-01-15T14:32:01Z","level":"INFO","a":"1"})"
            "\n");
}

TEST(KeyValueParser, EmptyValueAndNoLevel) {
  EXPECT_EQ(run(keyvalue(), "2024-01-15 14:32:01 a= b=2").json,
            R"({"@timestamp":"2024-01-15T14:32:01Z","a":"","b":"2"})"
            "\n");
}

TEST(KeyValueParser, InvalidUtf8IsReplaced) {
  EXPECT_EQ(run(keyvalue(), "2024-01-15 14:32:01 INFO a=\xff\xfe ok=\xc3\xa9").json,
            R"({"@timestamp":"2024-01-15T14:32:01Z","level":"INFO","a":"\ufffd\ufffd",)"
            "\"ok\":\"\xc3\xa9\"}\n");
}

TEST(KeyValueParser, NoTimestampIsAFailure) {
  EXPECT_FALSE(run(keyvalue(), "INFO a=1").ok);
  EXPECT_FALSE(run(keyvalue(), "").ok);
}

TEST(JsonParser, PassesThroughAndAddsTimestamp) {
  ParserConfig c;
  c.format = Format::kJson;
  c.time_layout = "rfc3339";
  EXPECT_EQ(run(c, R"({"time":"2024-01-15T14:32:01Z","a":{"b":[1,2]}})").json,
            R"({"@timestamp":"2024-01-15T14:32:01Z","time":"2024-01-15T14:32:01Z",)"
            R"("a":{"b":[1,2]}})"
            "\n");
  EXPECT_EQ(run(c, R"({"@timestamp":"x","a":1})").json, R"({"@timestamp":"x","a":1})"
                                                        "\n");
  EXPECT_EQ(run(c, R"({"a":1})").json, R"({"@timestamp":"2023-11-14T22:13:20Z","a":1})"
                                       "\n");
  EXPECT_FALSE(run(c, "[1,2]").ok);
  EXPECT_FALSE(run(c, "{broken").ok);
}

TEST(RegexParser, NamedGroups) {
  ParserConfig c;
  c.format = Format::kRegex;
  c.regex = R"(^(?<time>\S+ \S+) (?<level>\w+) (?P<message>.*)$)";
  EXPECT_EQ(run(c, "2024-01-15 14:32:01 INFO hello there").json,
            R"({"@timestamp":"2024-01-15T14:32:01Z","level":"INFO","message":"hello there"})"
            "\n");
  EXPECT_FALSE(run(c, "nope").ok);
}

TEST(RegexParser, GroupNames) {
  EXPECT_EQ(RegexParser::group_names(R"((?<a>x)(?:y)(?<=z)\(?<no>(?P<b>.)(?'c'.)[(?<d>])"),
            (std::vector<std::string>{"a", "b", "c"}));
}

TEST(RegexParser, BadRegexOrNoGroupIsAConfigError) {
  ParserConfig c;
  c.format = Format::kRegex;
  c.regex = "(?<a>[";
  EXPECT_THROW(make_parser(c), ConfigError);
  c.regex = "plain";
  EXPECT_THROW(make_parser(c), ConfigError);
}

}  // namespace
}  // namespace pillion::logs
