#include "init/rules.h"

#include <algorithm>
#include <array>

namespace pillion::init {
namespace {

struct FamilyAddresses {
  const char* header;
  const char* loopback;        // the app's own loopback address: never captured
  const char* inbound_source;  // the inbound sidecar connects to the app from here
};

FamilyAddresses addresses(Family family) {
  if (family == Family::kIPv4) {
    return {"# pillion init: IPv4 nat rules for iptables-restore --noflush", "127.0.0.1/32",
            "127.0.0.6/32"};
  }
  return {"# pillion init: IPv6 nat rules for ip6tables-restore --noflush", "::1/128", "::6/128"};
}

// Rules are written the way iptables-save prints them back, so a dry run reads like the result.
class Restore {
 public:
  void line(std::string text) {
    text_ += text;
    text_ += '\n';
  }
  void rule(std::string_view chain, const std::string& spec) {
    line("-A " + std::string(chain) + " " + spec);
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

std::string tcp_port(uint16_t port) {
  return "-p tcp -m tcp --dport " + std::to_string(port);
}

std::string jump(std::string_view chain) {
  return "-j " + std::string(chain);
}

std::vector<std::string> cidrs_of(Family family, const std::vector<Cidr>& cidrs) {
  std::vector<std::string> out;
  for (const auto& cidr : cidrs) {
    if (cidr.family == family) {
      out.push_back(cidr.text);
    }
  }
  return out;
}

// Deleting the jumps iptables-save just showed cannot fail, so the whole transaction either
// applies or changes nothing; the chains themselves go after their jumps (-X refuses otherwise).
void remove_ours(Restore& out, const NatState& current, const std::vector<std::string>& keep) {
  for (const auto& rule : current.jump_rules) {
    out.line("-D" + rule.substr(2));
  }
  std::vector<std::string> stale;
  for (const auto& chain : current.chains) {
    if (std::find(keep.begin(), keep.end(), chain) == keep.end()) {
      stale.push_back(chain);
    }
  }
  for (const auto& chain : stale) {
    out.line("-F " + chain);
  }
  for (const auto& chain : stale) {
    out.line("-X " + chain);
  }
}

void inbound_rules(Restore& out, const Options& o) {
  out.rule(kInRedirectChain, "-p tcp -j REDIRECT --to-ports " + std::to_string(o.inbound_port));
  // Excluded ports return first, so they win over an explicit include list too.
  for (auto port : o.exclude_inbound_ports) {
    out.rule(kInboundChain, tcp_port(port) + " -j RETURN");
  }
  if (!o.include_inbound_ports) {
    out.rule(kInboundChain, "-p tcp " + jump(kInRedirectChain));
    return;
  }
  for (auto port : *o.include_inbound_ports) {
    out.rule(kInboundChain, tcp_port(port) + " " + jump(kInRedirectChain));
  }
}

void outbound_rules(Restore& out, const Options& o, Family family, const FamilyAddresses& a) {
  out.rule(kRedirectChain, "-p tcp -j REDIRECT --to-ports " + std::to_string(o.outbound_port));
  for (auto port : o.exclude_outbound_ports) {
    out.rule(kOutputChain, tcp_port(port) + " -j RETURN");
  }
  // The inbound sidecar delivering to the app (127.0.0.6 -> 127.0.0.1:<port>) goes straight.
  out.rule(kOutputChain, std::string("-s ") + a.inbound_source + " -o lo -j RETURN");
  // For the proxy's uid, then its gid (like Istio's istio-iptables):
  //  1. the proxy calling its own pod address leaves through lo: treat it as inbound, so the
  //     app calling itself through the sidecar gets inbound handling (same port selection);
  //  2. anyone else on lo (the app to itself, to 127.0.0.1 or its pod address) stays direct;
  //  3. the proxy's other connections are never captured, so they cannot loop back into it.
  const std::array<std::string, 2> owners{"--uid-owner " + std::to_string(o.proxy_uid),
                                          "--gid-owner " + std::to_string(o.proxy_gid)};
  for (const auto& owner : owners) {
    out.rule(kOutputChain, std::string("! -d ") + a.loopback + " -o lo -p tcp -m owner " + owner +
                               " " + jump(kInboundChain));
    out.rule(kOutputChain, "-o lo -m owner ! " + owner + " -j RETURN");
    out.rule(kOutputChain, "-m owner " + owner + " -j RETURN");
  }
  out.rule(kOutputChain, std::string("-d ") + a.loopback + " -j RETURN");
  for (const auto& cidr : cidrs_of(family, o.exclude_outbound_cidrs)) {
    out.rule(kOutputChain, "-d " + cidr + " -j RETURN");
  }
  if (!o.include_outbound_cidrs) {
    out.rule(kOutputChain, jump(kRedirectChain));
    return;
  }
  // An include list with no address of this family captures nothing of this family.
  for (const auto& cidr : cidrs_of(family, *o.include_outbound_cidrs)) {
    out.rule(kOutputChain, "-d " + cidr + " " + jump(kRedirectChain));
  }
}

}  // namespace

std::string render_install(const Options& options, Family family, const NatState& current) {
  const auto a = addresses(family);
  const std::vector<std::string> ours{std::string(kInboundChain), std::string(kInRedirectChain),
                                      std::string(kOutputChain), std::string(kRedirectChain)};
  Restore out;
  out.line(a.header);
  out.line("*nat");
  // Declaring a chain that exists flushes it (with --noflush, nothing else is flushed), so a
  // second run rebuilds our chains from scratch instead of appending duplicates.
  for (const auto& chain : ours) {
    out.line(":" + chain + " - [0:0]");
  }
  // Our jumps that are already there are deleted and appended again below, so there is always
  // exactly one of each; a chain left by another version of pillion is removed.
  remove_ours(out, current, ours);
  inbound_rules(out, options);
  outbound_rules(out, options, family, a);
  out.rule("PREROUTING", "-p tcp " + jump(kInboundChain));
  out.rule("OUTPUT", "-p tcp " + jump(kOutputChain));
  out.line("COMMIT");
  return out.take();
}

std::string render_cleanup(Family family, const NatState& current) {
  if (current.empty()) {
    return "";
  }
  Restore out;
  out.line(std::string(addresses(family).header) + " (cleanup)");
  out.line("*nat");
  remove_ours(out, current, {});
  out.line("COMMIT");
  return out.take();
}

}  // namespace pillion::init
