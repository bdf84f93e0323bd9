#include "upstream/health_checker.h"

#include <gtest/gtest.h>

#include "test_support.h"
#include "upstream/dns_refresher.h"

namespace pillion::upstream {
namespace {

using namespace testing;

// A cluster state whose hosts are the given loopback ports.
ClusterStatePtr state_for(const std::vector<uint16_t>& ports, config::HealthCheck check) {
  std::vector<config::ClusterEndpoint> endpoints;
  for (uint16_t port : ports) {
    endpoints.push_back(endpoint("127.0.0.1", port));
  }
  auto config = cluster("backend", std::move(endpoints));
  config.health_check = std::move(check);
  std::string error;
  auto hosts = resolve_hosts(config, 1, {}, error);
  EXPECT_TRUE(hosts) << error;
  return std::make_shared<ClusterState>(config, std::move(*hosts), 1);
}

bool unhealthy(const ClusterStatePtr& state, size_t index = 0) {
  return state->hosts()->hosts.at(index)->failed_active_check.load();
}

TEST(ParseStatusLine, AcceptsHttp1StatusLines) {
  EXPECT_EQ(parse_status_line("HTTP/1.1 200 OK\r\n"), 200);
  EXPECT_EQ(parse_status_line("HTTP/1.0 503 Service Unavailable\r\n"), 503);
  EXPECT_EQ(parse_status_line("HTTP/1.1 204\r\n"), 204);
  EXPECT_EQ(parse_status_line("HTTP/1.1 404"), 404);
}

TEST(ParseStatusLine, RejectsGarbage) {
  EXPECT_FALSE(parse_status_line(""));
  EXPECT_FALSE(parse_status_line("garbage\r\n"));
  EXPECT_FALSE(parse_status_line("HTTP/2 200\r\n"));
  EXPECT_FALSE(parse_status_line("HTTP/1.1 20\r\n"));
  EXPECT_FALSE(parse_status_line("HTTP/1.1 2000\r\n"));
  EXPECT_FALSE(parse_status_line("HTTP/1.1 abc\r\n"));
  EXPECT_FALSE(parse_status_line("HTTP/1.1 099 x\r\n"));
}

TEST(HealthChecker, GoesUnhealthyAfterThresholdAndBack) {
  TestHttpServer server;
  auto check = fast_health_check(/*unhealthy=*/3, /*healthy=*/2);
  check.path = "/ready";
  check.host = "checked.example";
  auto state = state_for({server.port()}, check);
  Background background;
  auto checker = std::make_shared<HealthChecker>(background.context, state);
  checker->start();

  ASSERT_TRUE(eventually([&] { return state->health_checks_passed.load() >= 2; }));
  EXPECT_FALSE(unhealthy(state));
  std::string request = server.last_request();
  EXPECT_EQ(request.rfind("GET /ready HTTP/1.1\r\n", 0), 0U) << request;
  EXPECT_NE(request.find("\r\nHost: checked.example\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("\r\nUser-Agent: pillion-health-check\r\n"), std::string::npos);
  EXPECT_NE(request.find("\r\nConnection: close\r\n"), std::string::npos);

  server.set_status(503);
  ASSERT_TRUE(eventually([&] { return unhealthy(state); }));
  EXPECT_GE(state->health_checks_failed.load(), 3U);

  server.set_status(200);
  uint64_t passed = state->health_checks_passed.load();
  ASSERT_TRUE(eventually([&] { return !unhealthy(state); }));
  EXPECT_GE(state->health_checks_passed.load(), passed + 2);

  checker->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(HealthChecker, StaysHealthyBelowUnhealthyThreshold) {
  TestHttpServer server;
  server.set_status(500);
  auto state = state_for({server.port()}, fast_health_check(/*unhealthy=*/1000));
  Background background;
  auto checker = std::make_shared<HealthChecker>(background.context, state);
  checker->start();
  ASSERT_TRUE(eventually([&] { return state->health_checks_failed.load() >= 3; }));
  EXPECT_FALSE(unhealthy(state));
  EXPECT_EQ(state->health_checks_passed.load(), 0U);
  checker->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(HealthChecker, RefusedConnectionFails) {
  auto state = state_for({refused_port()}, fast_health_check(/*unhealthy=*/2));
  Background background;
  auto checker = std::make_shared<HealthChecker>(background.context, state);
  checker->start();
  ASSERT_TRUE(eventually([&] { return unhealthy(state); }));
  EXPECT_GE(state->health_checks_failed.load(), 2U);
  checker->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(HealthChecker, TimeoutCountsAsFailure) {
  TestHttpServer server;
  server.set_silent(true);  // accepts, never answers
  auto check = fast_health_check(/*unhealthy=*/2);
  check.timeout = 100ms;
  auto state = state_for({server.port()}, check);
  Background background;
  auto checker = std::make_shared<HealthChecker>(background.context, state);
  auto started = std::chrono::steady_clock::now();
  checker->start();
  ASSERT_TRUE(eventually([&] { return unhealthy(state); }));
  // Two timeouts and a pause between them: the deadline did its work.
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
  EXPECT_GE(server.requests(), 2);
  EXPECT_EQ(state->health_checks_passed.load(), 0U);
  checker->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(HealthChecker, GarbageResponseFails) {
  TestHttpServer server;
  server.set_response("garbage\r\n\r\n");
  auto state = state_for({server.port()}, fast_health_check(/*unhealthy=*/1));
  Background background;
  auto checker = std::make_shared<HealthChecker>(background.context, state);
  checker->start();
  ASSERT_TRUE(eventually([&] { return unhealthy(state); }));
  checker->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(HealthChecker, EndlessStatusLineIsBoundedAndFails) {
  TestHttpServer server;
  server.set_response("HTTP/1.1 200 " + std::string(20000, 'x'));
  auto state = state_for({server.port()}, fast_health_check(/*unhealthy=*/1));
  Background background;
  auto checker = std::make_shared<HealthChecker>(background.context, state);
  checker->start();
  ASSERT_TRUE(eventually([&] { return unhealthy(state); }));
  EXPECT_EQ(state->health_checks_passed.load(), 0U);
  checker->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(HealthChecker, FollowsTheCurrentHostSet) {
  TestHttpServer server;
  auto state = state_for({refused_port()}, fast_health_check(/*unhealthy=*/1));
  HostPtr departed = state->hosts()->hosts.at(0);
  Background background;
  auto checker = std::make_shared<HealthChecker>(background.context, state);
  checker->start();
  ASSERT_TRUE(eventually([&] { return departed->failed_active_check.load(); }));

  // DNS moved the cluster to another address: that one gets checked, the old one no longer.
  auto arrived = std::make_shared<Host>(
      boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), server.port()),
      "backend:80", 1, 1);
  state->publish({arrived});
  ASSERT_TRUE(eventually([&] { return server.requests() >= 2; }));
  EXPECT_FALSE(arrived->failed_active_check.load());
  uint64_t failed = state->health_checks_failed.load();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(state->health_checks_failed.load(), failed);

  checker->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(HealthChecker, StopFromAnotherThreadEndsEverythingInFlight) {
  TestHttpServer server;
  server.set_silent(true);
  auto check = fast_health_check();
  check.timeout = 10s;  // a check stays in flight until stop() closes it
  auto state = state_for({server.port()}, check);
  Background background;
  auto checker = std::make_shared<HealthChecker>(background.context, state);
  checker->start();
  ASSERT_TRUE(eventually([&] { return server.requests() >= 1; }));
  std::weak_ptr<HealthChecker> watched = checker;
  checker->stop();
  checker.reset();
  // No timer, socket or handler is left: the loop runs out of work at once.
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(background.stop_and_join(2000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1000ms);
  EXPECT_TRUE(watched.expired());
}

TEST(HealthChecker, StopBeforeStartRunsNothing) {
  TestHttpServer server;
  auto state = state_for({server.port()}, fast_health_check());
  Background background;
  auto checker = std::make_shared<HealthChecker>(background.context, state);
  checker->stop();
  checker->start();
  EXPECT_TRUE(background.stop_and_join());
  EXPECT_EQ(server.requests(), 0);
}

}  // namespace
}  // namespace pillion::upstream
