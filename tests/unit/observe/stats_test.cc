#include "observe/stats.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#ifndef __has_feature
#define __has_feature(x) 0
#endif

namespace pillion::observe {
namespace {

// Two listeners (outbound "out" reaching cluster a; inbound "in" reaching b) over clusters a, b.
MetricLayout two_listeners() {
  MetricLayout layout;
  layout.clusters = {"a", "b"};
  layout.listeners.push_back({"out", Direction::kOutbound, {true, false}});
  layout.listeners.push_back({"in", Direction::kInbound, {false, true}});
  layout.config_version = 7;
  return layout;
}

TEST(Stats, MergesShards) {
  Stats stats(3);
  stats.worker(0).downstream_rq_total.add(2);
  stats.worker(2).downstream_rq_total.add(5);
  stats.worker(1).flags[static_cast<size_t>(Flag::kUpstreamTimeout)].add();
  auto text = stats.render_text();
  EXPECT_NE(text.find("downstream_rq_total: 7\n"), std::string::npos);
  EXPECT_NE(text.find("response_flag_UT: 1\n"), std::string::npos);
}

TEST(Stats, RouteSlotsAreIndexedAndBoundsChecked) {
  Stats stats(1, two_listeners());
  auto& worker = stats.worker(0);
  EXPECT_NE(worker.route(0, 0), nullptr);
  EXPECT_NE(worker.route(1, 1), nullptr);
  EXPECT_NE(worker.route(1, kNoCluster), nullptr);
  EXPECT_NE(worker.route(0, 0), worker.route(1, 0));
  EXPECT_NE(worker.route(0, kNoCluster), worker.route(1, kNoCluster));
  EXPECT_EQ(worker.route(2, 0), nullptr);
  EXPECT_EQ(worker.route(0, 2), nullptr);
  Stats empty(1);
  EXPECT_EQ(empty.worker(0).route(0, kNoCluster), nullptr);
}

TEST(Stats, ClassCountersMergeIntoLabelledSeriesAndText) {
  Stats stats(2, two_listeners());
  stats.worker(0).route(0, 0)->record(200, 100, 50);
  stats.worker(1).route(0, 0)->record(204, 100, 50);
  stats.worker(1).route(0, kNoCluster)->record(404, 10, -1);
  stats.worker(0).route(1, 1)->record(503, 10, 5);
  stats.worker(0).route(1, 1)->record(0, 10, -1);  // no response: duration only
  auto prom = stats.render_prometheus();
  auto has = [&](const std::string& line) { return prom.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has(
      R"(pillion_requests_total{direction="outbound",listener="out",cluster="a",code_class="2xx"} 2)"));
  EXPECT_TRUE(has(
      R"(pillion_requests_total{direction="outbound",listener="out",cluster="none",code_class="4xx"} 1)"));
  EXPECT_TRUE(has(
      R"(pillion_requests_total{direction="inbound",listener="in",cluster="b",code_class="5xx"} 1)"));
  // Reachable pairs are exported at zero; unreachable ones are not.
  EXPECT_TRUE(has(
      R"(pillion_requests_total{direction="inbound",listener="in",cluster="b",code_class="1xx"} 0)"));
  EXPECT_EQ(prom.find(R"(listener="out",cluster="b")"), std::string::npos);
  EXPECT_EQ(prom.find(R"(listener="in",cluster="a")"), std::string::npos);
  // No upstream histogram for cluster "none": nothing ever goes upstream there.
  EXPECT_EQ(
      prom.find(
          R"(pillion_upstream_response_seconds_count{direction="outbound",listener="out",cluster="none"})"),
      std::string::npos);
  EXPECT_TRUE(has(
      R"(pillion_request_duration_seconds_count{direction="inbound",listener="in",cluster="b"} 2)"));
  EXPECT_TRUE(has(
      R"(pillion_upstream_response_seconds_count{direction="inbound",listener="in",cluster="b"} 1)"));
  EXPECT_TRUE(has("pillion_config_version 7"));
  EXPECT_TRUE(has("pillion_workers 2"));

  auto text = stats.render_text();
  EXPECT_NE(text.find("downstream_rq_2xx: 2\n"), std::string::npos);
  EXPECT_NE(text.find("downstream_rq_4xx: 1\n"), std::string::npos);
  EXPECT_NE(text.find("downstream_rq_5xx: 1\n"), std::string::npos);
}

TEST(Stats, LabelValuesAreEscaped) {
  MetricLayout layout;
  layout.clusters = {"we\"ird\\name\nx"};
  layout.listeners.push_back({"l", Direction::kOutbound, {true}});
  Stats stats(1, std::move(layout));
  auto prom = stats.render_prometheus();
  EXPECT_NE(prom.find(R"(cluster="we\"ird\\name\nx")"), std::string::npos) << prom;
}

TEST(Stats, ProcessGaugesArePlausible) {
  Stats stats(1);
  auto prom = stats.render_prometheus();
  auto value = [&](const std::string& name) {
    auto at = prom.find("\n" + name + " ");
    EXPECT_NE(at, std::string::npos) << name;
    return std::stod(prom.substr(at + name.size() + 2));
  };
  EXPECT_GT(value("pillion_process_resident_memory_bytes"), 1 << 20);
#if !defined(__SANITIZE_ADDRESS__) && !__has_feature(address_sanitizer)
  EXPECT_GT(value("pillion_process_heap_allocated_bytes"), 0);  // ASan's mallinfo2 says 0
#endif
  EXPECT_GE(value("pillion_process_open_fds"), 3);
  auto now = static_cast<double>(std::time(nullptr));
  EXPECT_GT(value("pillion_process_start_time_seconds"), now - 3600);
  EXPECT_LE(value("pillion_process_start_time_seconds"), now + 1);
}

TEST(Stats, PrometheusExpositionIsWellFormed) {
  Stats stats(2, two_listeners());
  stats.worker(0).route(0, 0)->record(200, 1234, 1000);
  auto text = stats.render_prometheus();
  std::regex label(R"([a-z_]+="(?:[^"\\]|\\.)*")");
  std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? [-+0-9.e]+$)");
  std::regex meta(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::istringstream lines(text);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(std::regex_match(line, sample) || std::regex_match(line, meta)) << line;
    samples += line[0] != '#';
  }
  EXPECT_GT(samples, 50);
}

TEST(Flags, FormatsCodes) {
  std::string out;
  append_flags(0, out);
  EXPECT_EQ(out, "-");
  out.clear();
  append_flags(flag_bit(Flag::kNoRoute) | flag_bit(Flag::kDownstreamDisconnect), out);
  EXPECT_EQ(out, "DC,NR");
}

}  // namespace
}  // namespace pillion::observe
