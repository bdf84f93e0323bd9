#include "proxy/reload.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "config/load.h"

namespace pillion::proxy {
namespace {

std::string yaml(const std::string& cluster, const std::string& listen = "127.0.0.1:7000",
                 const std::string& extra = "") {
  return "listeners:\n"
         "  - { name: out, address: " +
         listen +
         " }\n"
         "routes:\n"
         "  default:\n"
         "    - { cluster: " +
         cluster +
         " }\n"
         "clusters:\n"
         "  - { name: a, endpoints: [\"127.0.0.1:8001\"] }\n"
         "  - { name: b, endpoints: [\"127.0.0.1:8002\"] }\n" +
         extra;
}

config::SnapshotPtr load(const std::string& text) {
  auto loaded = config::load_yaml(text, "pillion.yaml");
  EXPECT_TRUE(loaded) << loaded.error;
  return loaded.snapshot;
}

// A runtime as build_runtime lays it out, without resolving or a cluster manager.
RuntimePtr fake_runtime(config::SnapshotPtr config) {
  auto runtime = std::make_shared<Runtime>();
  runtime->config = config;
  for (const auto& cluster : config->clusters) {
    ClusterRuntime item;
    item.config = &cluster;
    item.index = runtime->clusters.size();
    runtime->clusters.push_back(item);
  }
  for (const auto& listener : config->listeners) {
    ListenerRuntime item;
    item.config = &listener;
    for (const auto& route : config->routes.at(listener.routes)) {
      RouteRuntime route_runtime;
      route_runtime.config = &route;
      for (const auto& cluster : runtime->clusters) {
        if (cluster.config->name == route.cluster) {
          route_runtime.cluster = cluster.index;
        }
      }
      item.routes.push_back(route_runtime);
    }
    runtime->listeners.push_back(std::move(item));
  }
  return runtime;
}

TEST(ListenerChanges, OnlyListenersCount) {
  auto running = load(yaml("a"));
  EXPECT_EQ(listener_changes(*running, *load(yaml("b"))), "");
  EXPECT_EQ(listener_changes(*running, *load(yaml("a", "127.0.0.1:7001"))),
            "listener changes need a restart: listener 'out' address 127.0.0.1:7000 -> "
            "127.0.0.1:7001");
  auto added =
      load(yaml("a", "127.0.0.1:7000", "  - { name: c, endpoints: [\"127.0.0.1:8003\"] }\n"));
  EXPECT_EQ(listener_changes(*running, *added), "");
  auto second = std::make_shared<config::Snapshot>(*running);
  second->listeners.push_back(second->listeners[0]);
  second->listeners[1].name = "out2";
  EXPECT_EQ(listener_changes(*running, *second),
            "listener changes need a restart: listener 'out2' added");
  second->listeners.erase(second->listeners.begin());
  second->listeners[0].mode = config::ListenerMode::kTransparentOutbound;
  EXPECT_NE(listener_changes(*running, *second).find("renamed 'out' -> 'out2'"), std::string::npos);
}

TEST(KeepStartupSettings, ServersAndWorkersStayAsRunning) {
  auto running = load(yaml("a"));
  auto next = std::make_shared<config::Snapshot>(*load(yaml("b")));
  EXPECT_TRUE(keep_startup_settings(*running, *next).empty());
  next->admin.port = 9999;
  next->workers = 7;
  next->timeouts.idle = std::chrono::seconds(1);  // applied, not a startup setting
  auto kept = keep_startup_settings(*running, *next);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0], "workers changed; it takes effect after a restart");
  EXPECT_EQ(kept[1], "admin.address changed; it takes effect after a restart");
  EXPECT_EQ(next->admin, running->admin);
  EXPECT_EQ(next->workers, running->workers);
  EXPECT_EQ(next->timeouts.idle, std::chrono::seconds(1));
}

observe::MetricLayout one_listener(size_t capacity) {
  observe::MetricLayout layout;
  layout.cluster_capacity = capacity;
  layout.listeners.push_back({"out", observe::Direction::kOutbound, {}});
  return layout;
}

TEST(StatsSlots, KeptClustersKeepTheirSlotsAndCounts) {
  observe::Stats stats(2, one_listener(3));
  EXPECT_EQ(stats.cluster_slot("a"), 0u);
  EXPECT_EQ(stats.cluster_slot("b"), 1u);
  auto* before = stats.worker(1).route(0, 1);
  before->record(200, 10, 5);
  // A reload drops a, keeps b, adds c and d: b keeps slot 1, c takes 2, d is beyond the reserve.
  EXPECT_EQ(stats.cluster_slot("b"), 1u);
  EXPECT_EQ(stats.cluster_slot("c"), 2u);
  EXPECT_EQ(stats.cluster_slot("d"), observe::kOtherCluster);
  EXPECT_EQ(stats.worker(1).route(0, 1), before);  // nothing moved under the worker
  ASSERT_NE(stats.worker(0).route(0, observe::kOtherCluster), nullptr);
  stats.worker(0).route(0, observe::kOtherCluster)->record(503, 10, 5);
  stats.set_reachable(0, {false, true, true, true});  // b, c and "other"
  auto prom = stats.render_prometheus();
  auto has = [&](const std::string& line) { return prom.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has(
      R"(pillion_requests_total{direction="outbound",listener="out",cluster="b",code_class="2xx"} 1)"));
  EXPECT_TRUE(has(
      R"(pillion_requests_total{direction="outbound",listener="out",cluster="c",code_class="2xx"} 0)"));
  EXPECT_TRUE(has(
      R"(pillion_requests_total{direction="outbound",listener="out",cluster="other",code_class="5xx"} 1)"));
  // a is no longer reachable and never counted: no series.
  EXPECT_EQ(prom.find(R"(cluster="a")"), std::string::npos);
}

TEST(StatsSlots, RemovedClusterThatCountedStaysFrozen) {
  observe::Stats stats(1, one_listener(4));
  stats.cluster_slot("a");
  stats.set_reachable(0, {true});
  stats.worker(0).route(0, 0)->record(200, 10, 5);
  stats.set_reachable(0, {false});  // a reload removed a
  auto prom = stats.render_prometheus();
  EXPECT_NE(
      prom.find(
          R"(pillion_requests_total{direction="outbound",listener="out",cluster="a",code_class="2xx"} 1)"),
      std::string::npos);
}

class ReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    running_ = fake_runtime(load(yaml("a")));
    bind_stats(const_cast<Runtime&>(*running_), stats_);
    Reloader::Hooks hooks;
    hooks.build = [this](config::SnapshotPtr snapshot, std::string& error) -> RuntimePtr {
      if (fail_build_) {
        error = "cannot resolve payments";
        return nullptr;
      }
      return fake_runtime(std::move(snapshot));
    };
    hooks.publish = [this](const RuntimePtr& runtime) { published_ = runtime; };
    reloader_ = std::make_unique<Reloader>("/etc/pillion.yaml", running_, stats_, hooks);
  }

  uint64_t metric(const std::string& line) {
    auto prom = stats_.render_prometheus();
    auto at = prom.find("\n" + line + " ");
    EXPECT_NE(at, std::string::npos) << line;
    return std::stoull(prom.substr(at + line.size() + 2));
  }

  observe::Stats stats_{1, one_listener(8)};
  RuntimePtr running_;
  RuntimePtr published_;
  bool fail_build_ = false;
  std::unique_ptr<Reloader> reloader_;
};

TEST_F(ReloaderTest, AppliesAndBumpsTheVersion) {
  EXPECT_EQ(metric("pillion_config_version"), 1u);
  ASSERT_TRUE(reloader_->apply(yaml("b")));
  ASSERT_NE(published_, nullptr);
  EXPECT_EQ(published_, reloader_->running());
  EXPECT_EQ(published_->config->version, 2u);
  EXPECT_EQ(published_->config->routes.at("default")[0].cluster, "b");
  EXPECT_EQ(published_->clusters[1].stats_slot, running_->clusters[1].stats_slot);
  EXPECT_EQ(metric("pillion_config_version"), 2u);
  EXPECT_EQ(metric(R"(pillion_config_reloads_total{result="ok"})"), 1u);
  EXPECT_EQ(metric(R"(pillion_config_reloads_total{result="failed"})"), 0u);
  ASSERT_TRUE(reloader_->apply(yaml("a")));
  EXPECT_EQ(published_->config->version, 3u);
}

TEST_F(ReloaderTest, RejectsBadFilesAndKeepsTheRunningConfig) {
  EXPECT_FALSE(reloader_->apply("listeners: [ { name: out\n"));  // YAML syntax
  EXPECT_FALSE(reloader_->apply(yaml("nope")));                  // unknown cluster
  EXPECT_FALSE(reloader_->apply(yaml("a", "127.0.0.1:7001")));   // listener change
  fail_build_ = true;
  EXPECT_FALSE(reloader_->apply(yaml("b")));
  EXPECT_EQ(published_, nullptr);
  EXPECT_EQ(reloader_->running(), running_);
  EXPECT_EQ(metric("pillion_config_version"), 1u);
  EXPECT_EQ(metric(R"(pillion_config_reloads_total{result="failed"})"), 4u);
  EXPECT_EQ(metric(R"(pillion_config_reloads_total{result="ok"})"), 0u);
}

TEST_F(ReloaderTest, UnreadableFileIsRejected) {
  std::string content = "stale";
  EXPECT_FALSE(reloader_->reload_file(content));
  EXPECT_TRUE(content.empty());
  EXPECT_EQ(metric(R"(pillion_config_reloads_total{result="failed"})"), 1u);
}

}  // namespace
}  // namespace pillion::proxy
