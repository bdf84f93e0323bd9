#include "init/options.h"

#include <gtest/gtest.h>

#include <string>

namespace pillion::init {
namespace {

std::string error_of(const InitFlags& flags) {
  try {
    parse_options(flags);
  } catch (const OptionError& e) {
    return e.what();
  }
  return "";
}

TEST(InitOptions, DefaultsAreTheDocumentedOnes) {
  const auto o = parse_options(InitFlags{});
  EXPECT_EQ(o.inbound_port, 15006);
  EXPECT_EQ(o.outbound_port, 15001);
  EXPECT_EQ(o.proxy_uid, 1337u);
  EXPECT_EQ(o.proxy_gid, 1337u);
  EXPECT_FALSE(o.include_inbound_ports.has_value());
  EXPECT_EQ(o.exclude_inbound_ports, (std::vector<uint16_t>{15090, 15021, 15020}));
  EXPECT_TRUE(o.exclude_outbound_ports.empty());
  EXPECT_TRUE(o.exclude_outbound_cidrs.empty());
  EXPECT_FALSE(o.include_outbound_cidrs.has_value());
}

TEST(InitOptions, PortListsAreTrimmedAndDeduplicated) {
  EXPECT_EQ(parse_port_list("--x", " 80, 443,80 "), (std::vector<uint16_t>{80, 443}));
  EXPECT_TRUE(parse_port_list("--x", "").empty());
  EXPECT_EQ(parse_port("--x", "65535"), 65535);
  EXPECT_EQ(parse_port("--x", "1"), 1);
}

TEST(InitOptions, EmptyListsMeanNone) {
  InitFlags flags;
  flags.include_inbound_ports = "";
  flags.exclude_inbound_ports = "";
  flags.include_outbound_cidrs = "";
  const auto o = parse_options(flags);
  ASSERT_TRUE(o.include_inbound_ports.has_value());
  EXPECT_TRUE(o.include_inbound_ports->empty());
  EXPECT_TRUE(o.exclude_inbound_ports.empty());
  ASSERT_TRUE(o.include_outbound_cidrs.has_value());
  EXPECT_TRUE(o.include_outbound_cidrs->empty());
}

TEST(InitOptions, BadPortsAreRejectedNamingTheFlag) {
  struct Case {
    std::string InitFlags::*field;
    const char* flag;
    const char* value;
  };
  for (const auto& c :
       {Case{&InitFlags::inbound_port, "--inbound-port", "0"},
        Case{&InitFlags::outbound_port, "--outbound-port", "70000"},
        Case{&InitFlags::inbound_port, "--inbound-port", "http"},
        Case{&InitFlags::outbound_port, "--outbound-port", "-1"},
        Case{&InitFlags::exclude_inbound_ports, "--exclude-inbound-ports", "80,0"},
        Case{&InitFlags::include_inbound_ports, "--include-inbound-ports", "80-90"},
        Case{&InitFlags::exclude_outbound_ports, "--exclude-outbound-ports", "70000"},
        Case{&InitFlags::exclude_outbound_ports, "--exclude-outbound-ports", "80,,90"}}) {
    InitFlags flags;
    flags.*c.field = c.value;
    const auto error = error_of(flags);
    EXPECT_NE(error.find(c.flag), std::string::npos) << c.value << ": " << error;
    EXPECT_NE(error.find("'"), std::string::npos) << error;
  }
  InitFlags flags;
  flags.inbound_port = "70000";
  EXPECT_EQ(error_of(flags), "--inbound-port: '70000' is not a TCP port (1-65535)");
}

TEST(InitOptions, NonNumericIdsAreRejected) {
  InitFlags flags;
  flags.proxy_uid = "istio-proxy";
  EXPECT_EQ(error_of(flags), "--proxy-uid: 'istio-proxy' is not a numeric id (0-4294967294)");
  flags = InitFlags{};
  flags.proxy_gid = "13x7";
  EXPECT_NE(error_of(flags).find("--proxy-gid: '13x7'"), std::string::npos);
  flags.proxy_gid = "4294967295";
  EXPECT_NE(error_of(flags).find("--proxy-gid"), std::string::npos);
  EXPECT_EQ(parse_id("--proxy-uid", "0"), 0u);
  EXPECT_EQ(parse_id("--proxy-uid", "4294967294"), 4294967294u);
}

TEST(InitOptions, CidrsAreCanonicalAndKnowTheirFamily) {
  EXPECT_EQ(parse_cidr("--x", "10.1.2.3/8"), (Cidr{Family::kIPv4, "10.0.0.0/8"}));
  EXPECT_EQ(parse_cidr("--x", "192.168.1.7"), (Cidr{Family::kIPv4, "192.168.1.7/32"}));
  EXPECT_EQ(parse_cidr("--x", "0.0.0.0/0"), (Cidr{Family::kIPv4, "0.0.0.0/0"}));
  EXPECT_EQ(parse_cidr("--x", "FD00:1::5/16"), (Cidr{Family::kIPv6, "fd00::/16"}));
  EXPECT_EQ(parse_cidr("--x", "2001:db8::1"), (Cidr{Family::kIPv6, "2001:db8::1/128"}));
  EXPECT_EQ(parse_cidr("--x", "10.0.0.1/31"), (Cidr{Family::kIPv4, "10.0.0.0/31"}));
}

TEST(InitOptions, BadCidrsAreRejected) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0/8", "300.1.1.1", "10.0.0.0/", "10.0.0.0/8/8",
                          "fd00::/129", "example.com", "10.0.0.0/x"}) {
    InitFlags flags;
    flags.exclude_outbound_cidrs = bad;
    const auto error = error_of(flags);
    EXPECT_EQ(error.rfind("--exclude-outbound-cidrs: '" + std::string(bad) + "'", 0), 0u)
        << bad << ": " << error;
  }
  InitFlags flags;
  flags.include_outbound_cidrs = "10.0.0.0/8,nope";
  EXPECT_NE(error_of(flags).find("--include-outbound-cidrs: 'nope' is not an IP address"),
            std::string::npos);
}

TEST(InitOptions, InboundAndOutboundPortsMustDiffer) {
  InitFlags flags;
  flags.inbound_port = "15001";
  EXPECT_NE(error_of(flags).find("must differ"), std::string::npos);
}

}  // namespace
}  // namespace pillion::init
