#include "http/b3.h"

#include <gtest/gtest.h>

#include <string>

namespace pillion::http {
namespace {

std::string str(const auto& chars) {
  return std::string(chars.data(), chars.size());
}

TEST(B3Single, ParsesAllFields) {
  auto parsed =
      parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90");
  ASSERT_TRUE(parsed && parsed->context);
  EXPECT_EQ(str(parsed->context->trace_id), "80f198ee56343ba864fe8b2a57d3eff7");
  EXPECT_EQ(str(parsed->context->span_id), "e457b5a2e4d86bd1");
  EXPECT_EQ(parsed->context->flags, 1);
  EXPECT_EQ(parsed->decision, SamplingDecision::kSample);
}

TEST(B3Single, PadsA64BitTraceIdAndAcceptsShortForms) {
  auto parsed = parse_b3_single("463ac35c9f6413ad-a2fb4a1d1a96d312");
  ASSERT_TRUE(parsed && parsed->context);
  EXPECT_EQ(str(parsed->context->trace_id), "0000000000000000463ac35c9f6413ad");
  EXPECT_EQ(parsed->decision, SamplingDecision::kNone);  // the receiver decides
  EXPECT_EQ(parsed->context->flags, 0);

  parsed = parse_b3_single("463ac35c9f6413ad-a2fb4a1d1a96d312-d");
  ASSERT_TRUE(parsed && parsed->context);
  EXPECT_EQ(parsed->decision, SamplingDecision::kDebug);
  EXPECT_EQ(parsed->context->flags, 1);

  parsed = parse_b3_single("463ac35c9f6413ad-a2fb4a1d1a96d312-0");
  ASSERT_TRUE(parsed && parsed->context);
  EXPECT_EQ(parsed->decision, SamplingDecision::kDrop);
}

TEST(B3Single, DecisionAloneHasNoContext) {
  for (auto [text, decision] :
       {std::pair{"0", SamplingDecision::kDrop}, std::pair{"1", SamplingDecision::kSample},
        std::pair{"d", SamplingDecision::kDebug}}) {
    auto parsed = parse_b3_single(text);
    ASSERT_TRUE(parsed) << text;
    EXPECT_FALSE(parsed->context) << text;
    EXPECT_EQ(parsed->decision, decision) << text;
  }
}

TEST(B3Single, RejectsInvalidInput) {
  for (const char* bad : {
           "",
           "2",
           "00",
           "true",
           "80f198ee56343ba864fe8b2a57d3eff7",                                     // no span id
           "80F198EE56343BA864FE8B2A57D3EFF7-e457b5a2e4d86bd1-1",                  // uppercase
           "00000000000000000000000000000000-e457b5a2e4d86bd1-1",                  // zero trace
           "80f198ee56343ba864fe8b2a57d3eff7-0000000000000000-1",                  // zero span
           "80f198ee56343ba864fe8b2a57d3eff-e457b5a2e4d86bd1-1",                   // 31 hex
           "80f198ee56343ba8-e457b5a2e4d86bd",                                     // short span
           "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-",                   // empty sampling
           "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-2",                  // bad sampling
           "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-true",               // not in b3
           "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b9",  // short parent
           "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-",  // 5 parts
           "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-05e3ac9a4f6e3b90",     // no sampling
           " 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",                   // space
           "-",
           "---",
       }) {
    EXPECT_FALSE(parse_b3_single(bad).has_value()) << bad;
  }
}

TEST(B3Multi, ParsesIdsAndSampling) {
  B3Headers headers;
  headers.trace_id = "463ac35c9f6413ad48485a3953bb6124";
  headers.span_id = "a2fb4a1d1a96d312";
  headers.parent_span_id = "0020000000000001";
  headers.sampled = "1";
  auto parsed = parse_b3_multi(headers);
  ASSERT_TRUE(parsed && parsed->context);
  EXPECT_EQ(str(parsed->context->trace_id), "463ac35c9f6413ad48485a3953bb6124");
  EXPECT_EQ(str(parsed->context->span_id), "a2fb4a1d1a96d312");
  EXPECT_EQ(parsed->decision, SamplingDecision::kSample);

  headers.sampled = "false";  // legacy spelling
  EXPECT_EQ(parse_b3_multi(headers)->decision, SamplingDecision::kDrop);
  headers.sampled.reset();
  EXPECT_EQ(parse_b3_multi(headers)->decision, SamplingDecision::kNone);
  headers.flags = "1";
  EXPECT_EQ(parse_b3_multi(headers)->decision, SamplingDecision::kDebug);
  headers.trace_id = "463ac35c9f6413ad";
  EXPECT_EQ(str(parse_b3_multi(headers)->context->trace_id), "0000000000000000463ac35c9f6413ad");
}

TEST(B3Multi, DecisionAloneAndRejections) {
  B3Headers none;
  EXPECT_FALSE(parse_b3_multi(none).has_value());

  B3Headers deny;
  deny.sampled = "0";
  auto parsed = parse_b3_multi(deny);
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->context);
  EXPECT_EQ(parsed->decision, SamplingDecision::kDrop);

  B3Headers good;
  good.trace_id = "463ac35c9f6413ad48485a3953bb6124";
  good.span_id = "a2fb4a1d1a96d312";
  auto with = [&](auto change) {
    B3Headers copy = good;
    change(copy);
    return parse_b3_multi(copy).has_value();
  };
  EXPECT_TRUE(with([](B3Headers&) {}));
  EXPECT_FALSE(with([](B3Headers& h) { h.span_id.reset(); }));
  EXPECT_FALSE(with([](B3Headers& h) { h.trace_id.reset(); }));
  EXPECT_FALSE(with([](B3Headers& h) { h.trace_id = "463ac35c9f6413ad4"; }));
  EXPECT_FALSE(with([](B3Headers& h) { h.span_id = "A2FB4A1D1A96D312"; }));
  EXPECT_FALSE(with([](B3Headers& h) { h.parent_span_id = "xyz"; }));
  EXPECT_FALSE(with([](B3Headers& h) { h.sampled = "yes"; }));
  EXPECT_FALSE(with([](B3Headers& h) { h.flags = "2"; }));
  EXPECT_FALSE(with([](B3Headers& h) { h.trace_id = "00000000000000000000000000000000"; }));

  B3Headers parent_only;
  parent_only.parent_span_id = "a2fb4a1d1a96d312";
  EXPECT_FALSE(parse_b3_multi(parent_only).has_value());
}

}  // namespace
}  // namespace pillion::http
