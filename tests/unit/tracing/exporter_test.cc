#include "observe/tracing/exporter.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>

#include "fake_collector.h"
#include "observe/tracing/span_buffer.h"

namespace pillion::observe::tracing {
namespace {

using namespace std::chrono_literals;
using test::FakeCollector;

Span make_span(http::IdGenerator& ids) {
  auto hop = http::next_hop({}, true, ids);
  Span span = start_span(hop, SpanKind::kClient, std::chrono::system_clock::now());
  span.set(SpanText::kName, "GET");
  span.set(SpanText::kMethod, "GET");
  span.set(SpanText::kPath, "/checkout");
  finish_span(span, 2ms, 200);
  return span;
}

std::string trace_id_of(const Span& span) {
  return std::string(span.trace_id.data(), span.trace_id.size());
}

ExporterConfig config_for(const std::string& endpoint) {
  ExporterConfig config;
  config.endpoint = endpoint;
  config.service_name = "checkout";
  config.batch_size = 10;
  config.flush_interval = 50ms;
  config.max_queued_spans = 1000;
  config.timeout = 1000ms;
  return config;
}

// A port nothing listens on: bound once, then released.
uint16_t closed_port() {
  boost::asio::io_context context;
  boost::asio::ip::tcp::acceptor acceptor(context, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

TEST(SpanExporter, SendsBatchesOfOtlpJsonWithTheRightIds) {
  FakeCollector collector(FakeCollector::Mode::kAnswer);
  SpanExporter exporter(config_for(collector.url("")));
  std::string error;
  ASSERT_TRUE(exporter.start(error)) << error;

  http::IdGenerator ids;
  SpanBuffer buffer(&exporter);
  std::multiset<std::string> sent;
  for (int i = 0; i < 95; ++i) {
    Span span = make_span(ids);
    sent.insert(trace_id_of(span));
    buffer.add(std::move(span));
  }
  buffer.flush();
  ASSERT_TRUE(collector.wait_for_spans(95, 5s));
  EXPECT_EQ(collector.trace_ids(), sent);
  auto posts = collector.posts();
  EXPECT_GE(posts.size(), 10u);
  for (const auto& post : posts) {
    EXPECT_EQ(post.path, "/v1/traces");
    EXPECT_EQ(post.content_type, "application/json");
    EXPECT_LE(post.trace_ids.size(), 10u);
    EXPECT_EQ(post.body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
              "checkout");
  }
  exporter.stop();
  EXPECT_EQ(exporter.spans_exported(), 95u);
  EXPECT_EQ(exporter.spans_dropped(), 0u);
  EXPECT_EQ(collector.connections(), 1u);  // one kept-alive connection for every batch
}

TEST(SpanExporter, SendsAPartialBatchAfterTheFlushInterval) {
  FakeCollector collector(FakeCollector::Mode::kAnswer);
  auto config = config_for(collector.url("/api/v2/spans"));
  config.format = ExportFormat::kZipkin;
  config.batch_size = 512;
  config.flush_interval = 100ms;
  SpanExporter exporter(config);
  std::string error;
  ASSERT_TRUE(exporter.start(error)) << error;

  http::IdGenerator ids;
  std::vector<Span> batch;
  for (int i = 0; i < 3; ++i) {
    batch.push_back(make_span(ids));
  }
  std::string first = trace_id_of(batch[0]);
  auto reused = exporter.submit(std::move(batch));
  EXPECT_TRUE(reused.empty());
  ASSERT_TRUE(collector.wait_for_spans(3, 5s));
  auto posts = collector.posts();
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].path, "/api/v2/spans");
  EXPECT_TRUE(posts[0].body.is_array());
  EXPECT_EQ(posts[0].body[0]["traceId"], first);
  EXPECT_EQ(posts[0].body[0]["localEndpoint"]["serviceName"], "checkout");
}

TEST(SpanExporter, StopSendsWhatIsQueued) {
  FakeCollector collector(FakeCollector::Mode::kAnswer);
  auto config = config_for(collector.url(""));
  config.flush_interval = 1h;  // only stop() can send these
  config.batch_size = 100;
  SpanExporter exporter(config);
  std::string error;
  ASSERT_TRUE(exporter.start(error)) << error;
  http::IdGenerator ids;
  std::vector<Span> batch;
  for (int i = 0; i < 7; ++i) {
    batch.push_back(make_span(ids));
  }
  (void)exporter.submit(std::move(batch));
  exporter.stop();
  EXPECT_EQ(exporter.spans_exported(), 7u);
  EXPECT_EQ(collector.trace_ids().size(), 7u);
  batch.push_back(make_span(ids));
  (void)exporter.submit(std::move(batch));  // after stop: dropped, counted
  EXPECT_EQ(exporter.spans_dropped(), 1u);
}

TEST(SpanExporter, CountsDropsWhenTheCollectorRefusesConnections) {
  auto config = config_for("http://127.0.0.1:" + std::to_string(closed_port()));
  SpanExporter exporter(config);
  std::string error;
  ASSERT_TRUE(exporter.start(error)) << error;
  http::IdGenerator ids;
  SpanBuffer buffer(&exporter);
  for (int i = 0; i < 50; ++i) {
    buffer.add(make_span(ids));
  }
  buffer.flush();
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (exporter.spans_dropped() < 50 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(exporter.spans_dropped(), 50u);
  EXPECT_EQ(exporter.spans_exported(), 0u);
}

TEST(SpanExporter, CountsDropsWhenTheCollectorAnswersWithAnError) {
  FakeCollector collector(FakeCollector::Mode::kFail);
  SpanExporter exporter(config_for(collector.url("")));
  std::string error;
  ASSERT_TRUE(exporter.start(error)) << error;
  http::IdGenerator ids;
  std::vector<Span> batch;
  for (int i = 0; i < 20; ++i) {
    batch.push_back(make_span(ids));
  }
  (void)exporter.submit(std::move(batch));
  ASSERT_TRUE(collector.wait_for_spans(20, 5s));
  exporter.stop();
  EXPECT_EQ(exporter.spans_dropped(), 20u);
  EXPECT_EQ(exporter.spans_exported(), 0u);
}

// The collector takes the POST and never answers: workers must not notice. 100k spans go in
// while the exporter thread is stuck; the queue never passes its limit, the rest is counted.
TEST(SpanExporter, NeverBlocksOrGrowsWhileTheCollectorHangs) {
  FakeCollector collector(FakeCollector::Mode::kHang);
  auto config = config_for(collector.url(""));
  config.batch_size = 256;
  config.max_queued_spans = 1024;
  config.flush_interval = 20ms;
  config.timeout = 3000ms;
  SpanExporter exporter(config);
  std::string error;
  ASSERT_TRUE(exporter.start(error)) << error;

  http::IdGenerator ids;
  const Span prototype = make_span(ids);
  std::vector<Span> batch(config.batch_size, prototype);
  batch = exporter.submit(std::move(batch));
  ASSERT_TRUE(collector.wait_for_requests(1, 5s));  // the exporter thread now waits for an answer

  constexpr size_t kSpans = 100000;
  size_t max_queued = 0;
  auto start = std::chrono::steady_clock::now();
  size_t submitted = 0;
  for (; submitted < kSpans; submitted += SpanBuffer::kFlushSpans) {
    batch.assign(SpanBuffer::kFlushSpans, prototype);
    batch = exporter.submit(std::move(batch));
    max_queued = std::max(max_queued, exporter.queued_spans());
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  // Still stuck on the first POST: nothing exported, every span beyond the limit dropped.
  EXPECT_EQ(exporter.spans_exported(), 0u);
  EXPECT_LT(elapsed, config.timeout);
  EXPECT_LE(max_queued, config.max_queued_spans);
  EXPECT_GE(exporter.spans_dropped(), submitted - config.max_queued_spans);

  exporter.stop();  // the hung POST times out; stop gives up on the rest
  EXPECT_EQ(exporter.spans_exported(), 0u);
  EXPECT_EQ(exporter.spans_dropped(), submitted + config.batch_size);
  EXPECT_EQ(exporter.queued_spans(), 0u);
}

TEST(SpanExporter, RejectsABadConfig) {
  ExporterConfig config;
  config.endpoint = "https://collector:4318/v1/traces";
  SpanExporter exporter(config);
  std::string error;
  EXPECT_FALSE(exporter.start(error));
  EXPECT_NE(error.find("endpoint"), std::string::npos);
}

TEST(SpanBuffer, DiscardsWithoutAnExporter) {
  http::IdGenerator ids;
  SpanBuffer buffer(nullptr);
  buffer.add(make_span(ids));
  buffer.flush();
}

}  // namespace
}  // namespace pillion::observe::tracing
