#include "observe/stats.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

namespace pillion::observe {
namespace {

TEST(Stats, MergesShards) {
  Stats stats(3);
  stats.worker(0).downstream_rq_total.add(2);
  stats.worker(2).downstream_rq_total.add(5);
  stats.worker(1).flags[static_cast<size_t>(Flag::kUpstreamTimeout)].add();
  auto text = stats.render_text();
  EXPECT_NE(text.find("downstream_rq_total: 7\n"), std::string::npos);
  EXPECT_NE(text.find("response_flag_UT: 1\n"), std::string::npos);
}

TEST(Stats, PrometheusExpositionIsWellFormed) {
  Stats stats(2);
  stats.worker(0).downstream_rq_by_class[2].add(4);
  stats.worker(1).downstream_rq_by_class[5].add(1);
  auto text = stats.render_prometheus();
  EXPECT_NE(text.find("pillion_requests_total{code_class=\"2xx\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("pillion_requests_total{code_class=\"5xx\"} 1\n"), std::string::npos);
  std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"]*"\})? [0-9]+$)");
  std::regex meta(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::istringstream lines(text);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(std::regex_match(line, sample) || std::regex_match(line, meta)) << line;
    samples += line[0] != '#';
  }
  EXPECT_GT(samples, 20);
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
