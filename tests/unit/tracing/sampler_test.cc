#include "observe/tracing/sampler.h"

#include <gtest/gtest.h>

namespace pillion::observe::tracing {
namespace {

using http::IncomingTrace;
using http::SamplingDecision;

TEST(Sampler, HonoursTheCallersDecisionWhateverTheRatio) {
  http::IdGenerator ids;
  Sampler never(0.0);
  Sampler always(1.0);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(never.sample(IncomingTrace{std::nullopt, SamplingDecision::kSample}, ids));
    EXPECT_TRUE(never.sample(IncomingTrace{std::nullopt, SamplingDecision::kDebug}, ids));
    EXPECT_FALSE(always.sample(IncomingTrace{std::nullopt, SamplingDecision::kDrop}, ids));
  }
}

TEST(Sampler, SamplesByRatioWhenNoDecisionCameIn) {
  http::IdGenerator ids;
  EXPECT_FALSE(Sampler(0.0).sample(IncomingTrace{}, ids));
  EXPECT_TRUE(Sampler(1.0).sample(IncomingTrace{}, ids));
  Sampler quarter(0.25);
  int sampled = 0;
  for (int i = 0; i < 10000; ++i) {
    sampled += quarter.sample(IncomingTrace{}, ids) ? 1 : 0;
  }
  EXPECT_NEAR(sampled, 2500, 250);
}

TEST(Sampler, DecidesForAB3ContextWithoutSamplingState) {
  http::IdGenerator ids;
  http::TraceContext context{};
  context.trace_id.fill('1');
  context.span_id.fill('2');
  IncomingTrace deferred{context, SamplingDecision::kNone};
  EXPECT_TRUE(Sampler(1.0).sample(deferred, ids));
  EXPECT_FALSE(Sampler(0.0).sample(deferred, ids));
}

}  // namespace
}  // namespace pillion::observe::tracing
