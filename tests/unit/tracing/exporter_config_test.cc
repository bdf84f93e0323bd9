#include "observe/tracing/exporter_config.h"

#include <gtest/gtest.h>

namespace pillion::observe::tracing {
namespace {

TEST(ExporterConfig, ParsesCollectorUrls) {
  auto url = parse_collector_url("http://otel-collector:4318", ExportFormat::kOtlp);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->address.host, "otel-collector");
  EXPECT_EQ(url->address.port, 4318);
  EXPECT_EQ(url->path, "/v1/traces");
  url = parse_collector_url("http://[::1]:9411/", ExportFormat::kZipkin);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->address.host, "::1");
  EXPECT_EQ(url->path, "/api/v2/spans");
  url = parse_collector_url("http://zipkin/custom/spans", ExportFormat::kZipkin);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->address.port, 80);
  EXPECT_EQ(url->path, "/custom/spans");
  for (const char* bad : {"https://c:4318/v1/traces", "c:4318", "http://", "http://c:99999/",
                          "http://c:4318/v1/traces?x=1", "http:///v1/traces"}) {
    EXPECT_FALSE(parse_collector_url(bad, ExportFormat::kOtlp)) << bad;
  }
}

TEST(ExporterConfig, ValidationNamesTheProblem) {
  ExporterConfig config;
  EXPECT_EQ(validate(config), "");
  config.batch_size = 0;
  EXPECT_NE(validate(config).find("batch_size"), std::string::npos);
  config.batch_size = 10000;
  EXPECT_NE(validate(config).find("max_queued_spans"), std::string::npos);
  config = {};
  config.endpoint = "grpc://x";
  EXPECT_NE(validate(config).find("endpoint"), std::string::npos);
}

}  // namespace
}  // namespace pillion::observe::tracing
