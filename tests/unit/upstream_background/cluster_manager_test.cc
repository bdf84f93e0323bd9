#include "upstream/cluster_manager.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace pillion::upstream {
namespace {

using namespace testing;

config::Snapshot snapshot_of(std::vector<config::Cluster> clusters) {
  config::Snapshot snapshot;
  snapshot.clusters = std::move(clusters);
  return snapshot;
}

TEST(ClusterManager, UnchangedClusterKeepsItsState) {
  ClusterManager manager(2);
  auto a = cluster("a", {endpoint("127.0.0.1", 8001)});
  auto b = cluster("b", {endpoint("127.0.0.1", 8002), endpoint("localhost", 8003)});
  std::string error;
  auto first = manager.update(snapshot_of({a, b}), error);
  ASSERT_EQ(first.size(), 2U) << error;
  EXPECT_EQ(first[0]->config().name, "a");
  EXPECT_EQ(first[1]->config().name, "b");
  EXPECT_EQ(first[1]->workers(), 2U);

  auto second = manager.update(snapshot_of({a, b}), error);
  ASSERT_EQ(second.size(), 2U) << error;
  EXPECT_EQ(second[0], first[0]);
  EXPECT_EQ(second[1], first[1]);

  // One field of b changes: b gets a new state that keeps its Host objects; a is untouched.
  b.connect_timeout = std::chrono::seconds(1);
  auto third = manager.update(snapshot_of({b, a}), error);
  ASSERT_EQ(third.size(), 2U) << error;
  EXPECT_EQ(third[1], first[0]);
  EXPECT_NE(third[0], first[1]);
  EXPECT_EQ(third[0]->config().connect_timeout, std::chrono::seconds(1));
  EXPECT_EQ(third[0]->hosts()->hosts, first[1]->hosts()->hosts);
}

TEST(ClusterManager, UnresolvableNameChangesNothing) {
  ClusterManager manager(1);
  auto a = cluster("a", {endpoint("127.0.0.1", 8001)});
  std::string error;
  auto first = manager.update(snapshot_of({a}), error);
  ASSERT_EQ(first.size(), 1U) << error;

  auto changed_a = a;
  changed_a.panic_threshold = 50;
  auto bad = cluster("bad", {endpoint("no-such-host.invalid", 80)});
  auto failed = manager.update(snapshot_of({changed_a, bad}), error);
  EXPECT_TRUE(failed.empty());
  EXPECT_EQ(error.rfind("cluster bad: cannot resolve no-such-host.invalid:80: ", 0), 0U) << error;

  error.clear();
  auto again = manager.update(snapshot_of({a}), error);
  ASSERT_EQ(again.size(), 1U) << error;
  EXPECT_EQ(again[0], first[0]);
}

TEST(ClusterManager, RunsHealthChecksInTheBackground) {
  TestHttpServer server;
  server.set_status(503);
  ClusterManager manager(1);
  auto checked = cluster("checked", {endpoint("127.0.0.1", server.port())});
  checked.health_check = fast_health_check(/*unhealthy=*/1, /*healthy=*/1);
  std::string error;
  auto states = manager.update(snapshot_of({checked}), error);  // before start: queued
  ASSERT_EQ(states.size(), 1U) << error;
  manager.start();
  HostPtr host = states[0]->hosts()->hosts.at(0);
  ASSERT_TRUE(eventually([&] { return host->failed_active_check.load(); }));

  // A new config for the cluster: a new state and checker; the old checker stops counting.
  auto changed = checked;
  changed.health_check->path = "/other";
  auto next = manager.update(snapshot_of({changed}), error);
  ASSERT_EQ(next.size(), 1U) << error;
  ASSERT_NE(next[0], states[0]);
  EXPECT_EQ(next[0]->hosts()->hosts.at(0), host);  // reused: still unhealthy
  server.set_status(200);
  ASSERT_TRUE(eventually([&] { return !host->failed_active_check.load(); }));
  ASSERT_TRUE(eventually([&] { return server.last_request().starts_with("GET /other "); }));
  uint64_t old_checks = states[0]->health_checks_passed + states[0]->health_checks_failed;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(states[0]->health_checks_passed + states[0]->health_checks_failed, old_checks);
  EXPECT_GT(next[0]->health_checks_passed.load(), 0U);

  // Dropped from the config: its checks end.
  auto none = manager.update(snapshot_of({}), error);
  EXPECT_TRUE(none.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int requests = server.requests();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(server.requests(), requests);
  manager.stop();
}

TEST(ClusterManager, StopJoinsPromptly) {
  TestHttpServer server;
  server.set_silent(true);
  ClusterManager manager(1);
  auto checked = cluster(
      "checked", {endpoint("127.0.0.1", server.port()), endpoint("localhost", server.port())});
  checked.health_check = fast_health_check();
  checked.health_check->timeout = std::chrono::seconds(30);
  checked.dns_refresh = std::chrono::seconds(30);
  manager.start();
  manager.start();  // idempotent
  std::string error;
  ASSERT_EQ(manager.update(snapshot_of({checked}), error).size(), 1U) << error;
  ASSERT_TRUE(eventually([&] { return server.requests() >= 1; }));
  auto started = std::chrono::steady_clock::now();
  manager.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

TEST(ClusterManager, DroppingTheHealthCheckClearsItsVerdict) {
  ClusterManager manager(1);
  auto checked = cluster("c", {endpoint("127.0.0.1", refused_port())});
  checked.health_check = fast_health_check(/*unhealthy=*/1);
  manager.start();
  std::string error;
  auto states = manager.update(snapshot_of({checked}), error);
  ASSERT_EQ(states.size(), 1U) << error;
  HostPtr host = states[0]->hosts()->hosts.at(0);
  ASSERT_TRUE(eventually([&] { return host->failed_active_check.load(); }));
  auto unchecked = checked;
  unchecked.health_check.reset();
  auto next = manager.update(snapshot_of({unchecked}), error);
  ASSERT_EQ(next.size(), 1U) << error;
  EXPECT_EQ(next[0]->hosts()->hosts.at(0), host);
  // The stop of the old checker is queued behind nothing slow: give it a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(host->failed_active_check.load());
}

TEST(ClusterManager, NeverStartedManagerDestroysQueuedWork) {
  TestHttpServer server;
  {
    ClusterManager manager(1);
    auto checked = cluster("checked", {endpoint("localhost", server.port())});
    checked.health_check = fast_health_check();
    std::string error;
    ASSERT_EQ(manager.update(snapshot_of({checked}), error).size(), 1U) << error;
  }
  EXPECT_EQ(server.requests(), 0);
}

}  // namespace
}  // namespace pillion::upstream
