#include "upstream/dns_refresher.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace pillion::upstream {
namespace {

using namespace testing;
using boost::asio::ip::make_address;
using boost::asio::ip::tcp;

TEST(ResolveHosts, IpLiteralsNeedNoLookup) {
  auto config = cluster("c", {endpoint("127.0.0.1", 8080, 3), endpoint("::1", 9090)});
  std::string error;
  auto hosts = resolve_hosts(config, 2, {}, error);
  ASSERT_TRUE(hosts) << error;
  ASSERT_EQ(hosts->size(), 2U);
  EXPECT_EQ((*hosts)[0]->label(), "127.0.0.1:8080");
  EXPECT_EQ((*hosts)[0]->authority(), "127.0.0.1:8080");
  EXPECT_EQ((*hosts)[0]->weight(), 3U);
  EXPECT_EQ((*hosts)[1]->label(), "[::1]:9090");
  EXPECT_EQ((*hosts)[1]->authority(), "[::1]:9090");
  EXPECT_EQ((*hosts)[1]->weight(), 1U);
  EXPECT_FALSE(has_dns_names(config));
}

TEST(ResolveHosts, NamesResolveToEveryAddress) {
  auto config = cluster("c", {endpoint("localhost", 8080, 5)});
  EXPECT_TRUE(has_dns_names(config));
  std::string error;
  auto hosts = resolve_hosts(config, 1, {}, error);
  ASSERT_TRUE(hosts) << error;
  ASSERT_FALSE(hosts->empty());
  for (const auto& host : *hosts) {
    EXPECT_TRUE(host->address().address().is_loopback()) << host->label();
    EXPECT_EQ(host->address().port(), 8080);
    EXPECT_EQ(host->authority(), "localhost:8080");
    EXPECT_EQ(host->weight(), 5U);
  }
}

TEST(ResolveHosts, UnresolvableNameIsAnError) {
  auto config =
      cluster("payments", {endpoint("127.0.0.1", 80), endpoint("no-such-host.invalid", 80)});
  std::string error;
  auto hosts = resolve_hosts(config, 1, {}, error);
  EXPECT_FALSE(hosts);
  EXPECT_EQ(error.rfind("cluster payments: cannot resolve no-such-host.invalid:80: ", 0), 0U)
      << error;
}

TEST(ResolveHosts, ReusesUnchangedHosts) {
  auto config = cluster(
      "c", {endpoint("127.0.0.1", 80), endpoint("localhost", 81), endpoint("127.0.0.2", 82)});
  std::string error;
  auto first = resolve_hosts(config, 1, {}, error);
  ASSERT_TRUE(first) << error;
  (*first)[0]->failed_active_check = true;

  auto again = resolve_hosts(config, 1, *first, error);
  ASSERT_TRUE(again) << error;
  ASSERT_EQ(again->size(), first->size());
  for (size_t i = 0; i < first->size(); ++i) {
    EXPECT_EQ((*again)[i], (*first)[i]) << i;
  }
  EXPECT_TRUE((*again)[0]->failed_active_check.load());  // health survives

  // Same address under another name, or another weight: not the same endpoint.
  auto changed = cluster("c", {endpoint("127.0.0.1", 80, 2), endpoint("localhost", 81)});
  auto third = resolve_hosts(changed, 1, *first, error);
  ASSERT_TRUE(third) << error;
  EXPECT_NE((*third)[0], (*first)[0]);
  EXPECT_EQ((*third)[0]->weight(), 2U);
  EXPECT_EQ((*third)[1], (*first)[1]);
  EXPECT_EQ(third->size(), first->size() - 1);
}

TEST(ResolveHosts, DuplicateEndpointsGetHostsOfTheirOwn) {
  auto config = cluster("c", {endpoint("127.0.0.1", 80), endpoint("127.0.0.1", 80)});
  std::string error;
  auto first = resolve_hosts(config, 1, {}, error);
  ASSERT_TRUE(first) << error;
  auto again = resolve_hosts(config, 1, *first, error);
  ASSERT_TRUE(again) << error;
  ASSERT_EQ(again->size(), 2U);
  EXPECT_NE((*again)[0], (*again)[1]);
}

ClusterStatePtr state_with(config::Cluster config, std::vector<HostPtr> hosts) {
  config.dns_refresh = std::chrono::milliseconds(50);
  return std::make_shared<ClusterState>(std::move(config), std::move(hosts), 1);
}

TEST(DnsRefresher, UnchangedAnswerKeepsTheSet) {
  auto config = cluster("c", {endpoint("localhost", 8080), endpoint("127.0.0.9", 80)});
  std::string error;
  auto hosts = resolve_hosts(config, 1, {}, error);
  ASSERT_TRUE(hosts) << error;
  auto state = state_with(config, *hosts);
  uint64_t version = state->hosts_version();
  Background background;
  auto refresher = std::make_shared<DnsRefresher>(background.context, state);
  refresher->start();
  ASSERT_TRUE(eventually([&] { return state->dns_refreshes.load() >= 3; }));
  EXPECT_EQ(state->hosts_version(), version);
  EXPECT_EQ(state->hosts()->hosts, *hosts);
  EXPECT_EQ(state->dns_failures.load(), 0U);
  refresher->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(DnsRefresher, ChangedAnswerIsPublishedKeepingUnchangedHosts) {
  auto config = cluster("c", {endpoint("localhost", 8080), endpoint("127.0.0.9", 80)});
  std::string error;
  auto resolved = resolve_hosts(config, 1, {}, error);
  ASSERT_TRUE(resolved) << error;
  // As if "localhost" had pointed elsewhere when the config was loaded.
  HostPtr literal = resolved->back();
  auto stale =
      std::make_shared<Host>(tcp::endpoint(make_address("10.1.2.3"), 8080), "localhost:8080", 1, 1);
  auto state = state_with(config, {stale, literal});
  uint64_t version = state->hosts_version();
  Background background;
  auto refresher = std::make_shared<DnsRefresher>(background.context, state);
  refresher->start();
  ASSERT_TRUE(eventually([&] { return state->hosts_version() != version; }));
  auto now = state->hosts()->hosts;
  EXPECT_EQ(now.size(), resolved->size());
  EXPECT_EQ(std::count(now.begin(), now.end(), stale), 0);
  EXPECT_EQ(std::count(now.begin(), now.end(), literal), 1);  // the same object
  for (const auto& host : now) {
    EXPECT_TRUE(host->address().address().is_loopback()) << host->label();
  }
  // Published once: later refreshes find nothing new.
  uint64_t published = state->hosts_version();
  uint64_t refreshes = state->dns_refreshes.load();
  ASSERT_TRUE(eventually([&] { return state->dns_refreshes.load() >= refreshes + 2; }));
  EXPECT_EQ(state->hosts_version(), published);
  refresher->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(DnsRefresher, FailedLookupKeepsTheSet) {
  auto config = cluster("c", {endpoint("no-such-host.invalid", 80)});
  auto kept = std::make_shared<Host>(tcp::endpoint(make_address("127.0.0.1"), 80),
                                     "no-such-host.invalid:80", 1, 1);
  auto state = state_with(config, {kept});
  uint64_t version = state->hosts_version();
  Background background;
  auto refresher = std::make_shared<DnsRefresher>(background.context, state);
  refresher->start();
  ASSERT_TRUE(eventually([&] { return state->dns_failures.load() >= 2; }));
  EXPECT_EQ(state->hosts_version(), version);
  EXPECT_EQ(state->hosts()->hosts, std::vector<HostPtr>{kept});
  EXPECT_EQ(state->dns_refreshes.load(), 0U);
  refresher->stop();
  EXPECT_TRUE(background.stop_and_join());
}

TEST(DnsRefresher, StopEndsTheLoop) {
  auto config = cluster("c", {endpoint("localhost", 8080)});
  std::string error;
  auto hosts = resolve_hosts(config, 1, {}, error);
  ASSERT_TRUE(hosts) << error;
  config.dns_refresh = std::chrono::seconds(60);  // a timer pending when stop() comes
  auto state = std::make_shared<ClusterState>(config, *hosts, 1);
  Background background;
  auto refresher = std::make_shared<DnsRefresher>(background.context, state);
  refresher->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::weak_ptr<DnsRefresher> watched = refresher;
  refresher->stop();
  refresher.reset();
  EXPECT_TRUE(background.stop_and_join(std::chrono::milliseconds(2000)));
  EXPECT_TRUE(watched.expired());
  EXPECT_EQ(state->dns_refreshes.load(), 0U);
}

}  // namespace
}  // namespace pillion::upstream
