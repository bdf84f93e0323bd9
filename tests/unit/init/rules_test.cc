#include "init/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace pillion::init {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text)) {
    if (l == line) {
      return true;
    }
  }
  return false;
}

Options with(void (*edit)(InitFlags&)) {
  InitFlags flags;
  edit(flags);
  return parse_options(flags);
}

const std::string kDefaultV4 =
    "# pillion init: IPv4 nat rules for iptables-restore --noflush\n"
    "*nat\n"
    ":PILLION_INBOUND - [0:0]\n"
    ":PILLION_IN_REDIRECT - [0:0]\n"
    ":PILLION_OUTPUT - [0:0]\n"
    ":PILLION_REDIRECT - [0:0]\n"
    "-A PILLION_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"
    "-A PILLION_INBOUND -p tcp -m tcp --dport 15090 -j RETURN\n"
    "-A PILLION_INBOUND -p tcp -m tcp --dport 15021 -j RETURN\n"
    "-A PILLION_INBOUND -p tcp -m tcp --dport 15020 -j RETURN\n"
    "-A PILLION_INBOUND -p tcp -j PILLION_IN_REDIRECT\n"
    "-A PILLION_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"
    "-A PILLION_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN\n"
    "-A PILLION_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j "
    "PILLION_INBOUND\n"
    "-A PILLION_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN\n"
    "-A PILLION_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"
    "-A PILLION_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 1337 -j "
    "PILLION_INBOUND\n"
    "-A PILLION_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN\n"
    "-A PILLION_OUTPUT -m owner --gid-owner 1337 -j RETURN\n"
    "-A PILLION_OUTPUT -d 127.0.0.1/32 -j RETURN\n"
    "-A PILLION_OUTPUT -j PILLION_REDIRECT\n"
    "-A PREROUTING -p tcp -j PILLION_INBOUND\n"
    "-A OUTPUT -p tcp -j PILLION_OUTPUT\n"
    "COMMIT\n";

TEST(InitRules, DefaultIPv4RuleSet) {
  EXPECT_EQ(render_install(parse_options({}), Family::kIPv4, {}), kDefaultV4);
}

TEST(InitRules, DefaultIPv6UsesIPv6LoopbackAndInboundSource) {
  const auto v6 = render_install(parse_options({}), Family::kIPv6, {});
  auto expected = kDefaultV4;
  for (auto [from, to] : {std::pair<std::string, std::string>{"IPv4 nat rules for iptables",
                                                              "IPv6 nat rules for ip6tables"},
                          {"127.0.0.6/32", "::6/128"},
                          {"127.0.0.1/32", "::1/128"},
                          {"127.0.0.1/32", "::1/128"},
                          {"127.0.0.1/32", "::1/128"}}) {
    expected.replace(expected.find(from), from.size(), to);
  }
  EXPECT_EQ(v6, expected);
}

TEST(InitRules, PortsAndIdsFollowTheFlags) {
  const auto text = render_install(with([](InitFlags& f) {
                                     f.inbound_port = "16006";
                                     f.outbound_port = "16001";
                                     f.proxy_uid = "2000";
                                     f.proxy_gid = "3000";
                                   }),
                                   Family::kIPv4, {});
  EXPECT_TRUE(has_line(text, "-A PILLION_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006"));
  EXPECT_TRUE(has_line(text, "-A PILLION_REDIRECT -p tcp -j REDIRECT --to-ports 16001"));
  EXPECT_TRUE(has_line(text, "-A PILLION_OUTPUT -m owner --uid-owner 2000 -j RETURN"));
  EXPECT_TRUE(has_line(text, "-A PILLION_OUTPUT -m owner --gid-owner 3000 -j RETURN"));
  EXPECT_TRUE(has_line(text, "-A PILLION_OUTPUT -o lo -m owner ! --uid-owner 2000 -j RETURN"));
  EXPECT_EQ(text.find("1337"), std::string::npos);
  EXPECT_EQ(text.find("15006"), std::string::npos);
}

TEST(InitRules, IncludeInboundPortsRedirectsOnlyThose) {
  const auto text = render_install(
      with([](InitFlags& f) { f.include_inbound_ports = "8080,9090"; }), Family::kIPv4, {});
  EXPECT_TRUE(
      has_line(text, "-A PILLION_INBOUND -p tcp -m tcp --dport 8080 -j PILLION_IN_REDIRECT"));
  EXPECT_TRUE(
      has_line(text, "-A PILLION_INBOUND -p tcp -m tcp --dport 9090 -j PILLION_IN_REDIRECT"));
  EXPECT_FALSE(has_line(text, "-A PILLION_INBOUND -p tcp -j PILLION_IN_REDIRECT"));
  // Exclusions still come first.
  EXPECT_LT(text.find("--dport 15090 -j RETURN"), text.find("--dport 8080"));
}

TEST(InitRules, NoInboundPortsMeansNoInboundRedirect) {
  const auto text =
      render_install(with([](InitFlags& f) { f.include_inbound_ports = ""; }), Family::kIPv4, {});
  EXPECT_EQ(text.find("-A PILLION_INBOUND -p tcp -j"), std::string::npos);
  EXPECT_EQ(text.find("-j PILLION_IN_REDIRECT"), std::string::npos);
}

TEST(InitRules, ExcludeInboundPortsReplacesTheDefault) {
  const auto text =
      render_install(with([](InitFlags& f) { f.exclude_inbound_ports = "22"; }), Family::kIPv4, {});
  EXPECT_TRUE(has_line(text, "-A PILLION_INBOUND -p tcp -m tcp --dport 22 -j RETURN"));
  EXPECT_EQ(text.find("15090"), std::string::npos);
  const auto none =
      render_install(with([](InitFlags& f) { f.exclude_inbound_ports = ""; }), Family::kIPv4, {});
  EXPECT_EQ(none.find("-A PILLION_INBOUND -p tcp -m tcp"), std::string::npos);
}

TEST(InitRules, ExcludeOutboundPortsReturnBeforeAnythingElse) {
  const auto text = render_install(
      with([](InitFlags& f) { f.exclude_outbound_ports = "5432,6379"; }), Family::kIPv4, {});
  const auto lines = lines_of(text);
  const auto first_output_rule = std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
    return l.starts_with("-A PILLION_OUTPUT");
  });
  ASSERT_NE(first_output_rule, lines.end());
  EXPECT_EQ(*first_output_rule, "-A PILLION_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN");
  EXPECT_EQ(*(first_output_rule + 1), "-A PILLION_OUTPUT -p tcp -m tcp --dport 6379 -j RETURN");
}

TEST(InitRules, OutboundCidrsSplitByFamily) {
  const auto options = with([](InitFlags& f) {
    f.exclude_outbound_cidrs = "10.96.0.0/12,fd00:10::/64";
    f.include_outbound_cidrs = "10.0.0.0/8,2001:db8::/32";
  });
  const auto v4 = render_install(options, Family::kIPv4, {});
  const auto v6 = render_install(options, Family::kIPv6, {});
  EXPECT_TRUE(has_line(v4, "-A PILLION_OUTPUT -d 10.96.0.0/12 -j RETURN"));
  EXPECT_TRUE(has_line(v4, "-A PILLION_OUTPUT -d 10.0.0.0/8 -j PILLION_REDIRECT"));
  EXPECT_FALSE(has_line(v4, "-A PILLION_OUTPUT -j PILLION_REDIRECT"));
  EXPECT_EQ(v4.find("fd00"), std::string::npos);
  EXPECT_EQ(v4.find("2001:db8"), std::string::npos);
  EXPECT_TRUE(has_line(v6, "-A PILLION_OUTPUT -d fd00:10::/64 -j RETURN"));
  EXPECT_TRUE(has_line(v6, "-A PILLION_OUTPUT -d 2001:db8::/32 -j PILLION_REDIRECT"));
  EXPECT_EQ(v6.find("10.96"), std::string::npos);
  EXPECT_EQ(v6.find("10.0.0.0"), std::string::npos);
  // Exclusions are checked before the include list.
  EXPECT_LT(v4.find("-d 10.96.0.0/12 -j RETURN"), v4.find("-d 10.0.0.0/8 -j PILLION_REDIRECT"));
}

TEST(InitRules, IncludeListOfOneFamilyCapturesNothingOfTheOther) {
  const auto options = with([](InitFlags& f) { f.include_outbound_cidrs = "10.0.0.0/8"; });
  const auto v6 = render_install(options, Family::kIPv6, {});
  EXPECT_EQ(v6.find("-j PILLION_REDIRECT"), std::string::npos);
  // The chain itself and its jump still exist, so cleanup and a rerun find the same shape.
  EXPECT_TRUE(has_line(v6, "-A OUTPUT -p tcp -j PILLION_OUTPUT"));
}

TEST(InitRules, RerunDeletesExistingJumpsAndStaleChainsInTheSameTransaction) {
  NatState current;
  current.chains = {"PILLION_INBOUND", "PILLION_OUTPUT", "PILLION_OLD"};
  current.jump_rules = {"-A PREROUTING -p tcp -j PILLION_INBOUND",
                        "-A OUTPUT -p tcp -j PILLION_OUTPUT", "-A OUTPUT -p udp -j PILLION_OLD"};
  const auto text = render_install(parse_options({}), Family::kIPv4, current);
  const auto lines = lines_of(text);
  auto at = [&](const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) - lines.begin();
  };
  const auto size = static_cast<long>(lines.size());
  ASSERT_LT(at("-D PREROUTING -p tcp -j PILLION_INBOUND"), size);
  ASSERT_LT(at("-D OUTPUT -p udp -j PILLION_OLD"), size);
  ASSERT_LT(at("-X PILLION_OLD"), size);
  EXPECT_LT(at("-D OUTPUT -p udp -j PILLION_OLD"), at("-F PILLION_OLD"));
  EXPECT_LT(at("-F PILLION_OLD"), at("-X PILLION_OLD"));
  EXPECT_LT(at("-D PREROUTING -p tcp -j PILLION_INBOUND"),
            at("-A PREROUTING -p tcp -j PILLION_INBOUND"));
  EXPECT_EQ(at("-X PILLION_INBOUND"), size);  // ours are flushed by their declaration, not removed
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "COMMIT"), 1);
  EXPECT_EQ(lines.back(), "COMMIT");
}

TEST(InitRules, CleanupRemovesOnlyWhatIsOurs) {
  EXPECT_EQ(render_cleanup(Family::kIPv4, {}), "");
  NatState current;
  current.chains = {"PILLION_INBOUND", "PILLION_OUTPUT"};
  current.jump_rules = {"-A PREROUTING -p tcp -j PILLION_INBOUND",
                        "-A OUTPUT -p tcp -j PILLION_OUTPUT"};
  EXPECT_EQ(render_cleanup(Family::kIPv6, current),
            "# pillion init: IPv6 nat rules for ip6tables-restore --noflush (cleanup)\n"
            "*nat\n"
            "-D PREROUTING -p tcp -j PILLION_INBOUND\n"
            "-D OUTPUT -p tcp -j PILLION_OUTPUT\n"
            "-F PILLION_INBOUND\n"
            "-F PILLION_OUTPUT\n"
            "-X PILLION_INBOUND\n"
            "-X PILLION_OUTPUT\n"
            "COMMIT\n");
}

}  // namespace
}  // namespace pillion::init
