#include "upstream/load_balancer.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace pillion::upstream {
namespace {

using namespace std::chrono_literals;
using config::LbPolicy;

constexpr auto kNow = Clock::time_point(1h);

HostSet make_set(std::initializer_list<uint32_t> weights, uint64_t version = 1) {
  HostSet set;
  set.version = version;
  uint16_t port = 8000;
  for (uint32_t weight : weights) {
    boost::asio::ip::tcp::endpoint address(boost::asio::ip::make_address("10.0.0.1"), port++);
    set.hosts.push_back(std::make_shared<Host>(address, "svc", weight, 2));
  }
  return set;
}

// How often each host (by index) was picked over `picks` picks.
std::vector<int> count_picks(LoadBalancer& lb, const HostSet& set, int picks,
                             uint32_t panic_threshold = 0, const Host* avoid = nullptr) {
  std::vector<int> counts(set.hosts.size());
  for (int i = 0; i < picks; ++i) {
    Pick pick = lb.pick(set, kNow, panic_threshold, avoid);
    if (pick.host == nullptr) {
      ADD_FAILURE() << "no host at pick " << i;
      continue;
    }
    for (size_t h = 0; h < set.hosts.size(); ++h) {
      counts[h] += set.hosts[h].get() == pick.host ? 1 : 0;
    }
  }
  return counts;
}

class AllPolicies : public testing::TestWithParam<LbPolicy> {};

TEST_P(AllPolicies, WeightsShareTheLoad) {
  LoadBalancer lb(GetParam(), 0, 42);
  auto set = make_set({1, 3});
  auto counts = count_picks(lb, set, 10000);
  EXPECT_NEAR(counts[0], 2500, 300);
  EXPECT_NEAR(counts[1], 7500, 300);
}

TEST_P(AllPolicies, UnavailableHostsAreNeverPicked) {
  LoadBalancer lb(GetParam(), 0, 7);
  auto set = make_set({1, 1, 1, 1});
  set.hosts[0]->ejected_until = (kNow + 1s).time_since_epoch().count();
  set.hosts[2]->failed_active_check = true;
  auto counts = count_picks(lb, set, 2000);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[2], 0);
  EXPECT_GT(counts[1], 800);
  EXPECT_GT(counts[3], 800);
}

TEST_P(AllPolicies, AnEjectionThatEndedNoLongerCounts) {
  LoadBalancer lb(GetParam(), 0, 7);
  auto set = make_set({1, 1});
  set.hosts[0]->ejected_until = kNow.time_since_epoch().count();  // up at exactly now
  auto counts = count_picks(lb, set, 1000);
  EXPECT_GT(counts[0], 400);
}

TEST_P(AllPolicies, AvoidIsSkippedWhenAnotherHostIsAvailable) {
  LoadBalancer lb(GetParam(), 0, 3);
  auto set = make_set({1, 1, 1});
  auto counts = count_picks(lb, set, 1000, 0, set.hosts[1].get());
  EXPECT_EQ(counts[1], 0);
  EXPECT_GT(counts[0], 400);
  EXPECT_GT(counts[2], 400);
}

TEST_P(AllPolicies, AvoidIsPickedWhenItIsTheOnlyAvailableHost) {
  LoadBalancer lb(GetParam(), 0, 3);
  auto set = make_set({1, 1});
  set.hosts[0]->failed_active_check = true;
  Pick pick = lb.pick(set, kNow, 0, set.hosts[1].get());
  EXPECT_EQ(pick.host, set.hosts[1].get());
  EXPECT_FALSE(pick.panic);
}

TEST_P(AllPolicies, NoAvailableHostIsNull) {
  LoadBalancer lb(GetParam(), 0, 3);
  auto set = make_set({1, 1});
  set.hosts[0]->failed_active_check = true;
  set.hosts[1]->failed_active_check = true;
  Pick pick = lb.pick(set, kNow, 0);
  EXPECT_EQ(pick.host, nullptr);
  EXPECT_FALSE(pick.panic);
  EXPECT_EQ(lb.pick(HostSet{}, kNow, 50).host, nullptr);
}

TEST_P(AllPolicies, PanicSpreadsOverAllHosts) {
  LoadBalancer lb(GetParam(), 0, 11);
  auto set = make_set({1, 1, 1, 1});
  for (int i = 0; i < 3; ++i) {
    set.hosts[i]->failed_active_check = true;
  }
  // 25% available: above a 20% threshold only the healthy host is picked...
  auto calm = count_picks(lb, set, 400, 20);
  EXPECT_EQ(calm[3], 400);
  EXPECT_FALSE(lb.pick(set, kNow, 20).panic);
  // ...below a 50% one every host is.
  Pick pick = lb.pick(set, kNow, 50);
  EXPECT_TRUE(pick.panic);
  auto panicked = count_picks(lb, set, 4000, 50);
  for (int count : panicked) {
    EXPECT_NEAR(count, 1000, 200);
  }
  // With none available, panic still finds a host.
  set.hosts[3]->failed_active_check = true;
  pick = lb.pick(set, kNow, 50);
  EXPECT_NE(pick.host, nullptr);
  EXPECT_TRUE(pick.panic);
}

INSTANTIATE_TEST_SUITE_P(Policies, AllPolicies,
                         testing::Values(LbPolicy::kLeastRequest, LbPolicy::kRoundRobin,
                                         LbPolicy::kRandom),
                         [](const testing::TestParamInfo<LbPolicy>& info) {
                           switch (info.param) {
                             case LbPolicy::kLeastRequest:
                               return std::string("LeastRequest");
                             case LbPolicy::kRoundRobin:
                               return std::string("RoundRobin");
                             case LbPolicy::kRandom:
                               return std::string("Random");
                           }
                           return std::string("Unknown");
                         });

TEST(RoundRobin, SmoothSequenceAsNginx) {
  LoadBalancer lb(LbPolicy::kRoundRobin, 0, 1);
  auto set = make_set({5, 1, 1});
  std::string sequence;
  for (int i = 0; i < 14; ++i) {
    Host* host = lb.pick(set, kNow, 0).host;
    sequence += static_cast<char>('a' + (host->address().port() - 8000));
  }
  EXPECT_EQ(sequence, "aabacaaaabacaa");
}

TEST(RoundRobin, NewSetVersionRestartsTheSequence) {
  LoadBalancer lb(LbPolicy::kRoundRobin, 0, 1);
  auto first = make_set({1, 1}, 1);
  EXPECT_EQ(lb.pick(first, kNow, 0).host, first.hosts[0].get());
  auto second = make_set({1, 1}, 2);
  EXPECT_EQ(lb.pick(second, kNow, 0).host, second.hosts[0].get());
  EXPECT_EQ(lb.pick(second, kNow, 0).host, second.hosts[1].get());
}

TEST(LeastRequest, PrefersTheLessBusyHost) {
  LoadBalancer lb(LbPolicy::kLeastRequest, 1, 5);
  auto set = make_set({1, 1});
  set.hosts[0]->add_active(1, 10);
  // The busy host wins only when both draws land on it: a quarter of the time.
  auto counts = count_picks(lb, set, 10000);
  EXPECT_NEAR(counts[1], 7500, 300);
}

TEST(LeastRequest, ReadsOnlyItsOwnWorkersCounts) {
  LoadBalancer lb(LbPolicy::kLeastRequest, 0, 5);
  auto set = make_set({1, 1});
  set.hosts[0]->add_active(1, 10);  // another worker's load
  auto counts = count_picks(lb, set, 10000);
  EXPECT_NEAR(counts[1], 5000, 300);
}

TEST(LeastRequest, BusyIsActivePerWeight) {
  LoadBalancer lb(LbPolicy::kLeastRequest, 0, 9);
  auto set = make_set({4, 1});
  set.hosts[0]->add_active(0, 3);  // 3/4 busy
  set.hosts[1]->add_active(0, 1);  // 1/1 busy: the heavy host is the less busy one
  // Host 1 wins only when both weighted draws pick it: (1/5)^2 = 4%.
  auto counts = count_picks(lb, set, 10000);
  EXPECT_NEAR(counts[1], 400, 150);
}

TEST(LoadBalancer, SameSeedSamePicks) {
  auto set = make_set({1, 2, 3});
  LoadBalancer a(LbPolicy::kRandom, 0, 99);
  LoadBalancer b(LbPolicy::kRandom, 0, 99);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(a.pick(set, kNow, 0).host, b.pick(set, kNow, 0).host) << i;
  }
}

}  // namespace
}  // namespace pillion::upstream
