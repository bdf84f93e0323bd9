// `pillion ca`: a small CA for tests, demos and small fleets. `init` makes the CA, `issue` a
// workload certificate whose URI SAN is its SPIFFE ID. The work is in src/tls/ca.cc; this file
// only parses flags.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/duration.h"
#include "tls/ca.h"

namespace pillion::cli {
namespace {

struct CaFlags {
  std::string dir;
  // init
  std::string trust_domain = "cluster.local";
  std::string init_ttl = "87600h";
  std::string init_key_type = "ecdsa";
  bool force = false;
  // issue
  std::string id;
  std::string issue_ttl = "24h";
  std::string out;
  std::vector<std::string> dns;
  std::string backdate = "0s";
  std::string issue_key_type = "ecdsa";
};

bool parse_seconds(const std::string& flag, const std::string& text, std::chrono::seconds& out) {
  auto duration = core::parse_duration(text);
  if (!duration) {
    std::cerr << "pillion ca: invalid " << flag << " '" << text
              << "': expected a duration such as 24h, 90m or 3600s\n";
    return false;
  }
  out = std::chrono::duration_cast<std::chrono::seconds>(*duration);
  return true;
}

bool parse_key_type(const std::string& text, tls::KeyType& out) {
  if (!tls::parse_key_type(text, out)) {
    std::cerr << "pillion ca: invalid --key-type '" << text << "': expected ecdsa or rsa\n";
    return false;
  }
  return true;
}

void report(const tls::CaResult& result) {
  std::cout << "pillion ca: " << result.subject_id << " valid until " << result.not_after << "\n";
  for (const auto& file : result.files) {
    std::cout << "  wrote " << file << "\n";
  }
}

int run_init(const CaFlags& flags) {
  tls::CaInitOptions options;
  options.dir = flags.dir;
  options.trust_domain = flags.trust_domain;
  options.force = flags.force;
  if (!parse_seconds("--ttl", flags.init_ttl, options.ttl) ||
      !parse_key_type(flags.init_key_type, options.key_type)) {
    return 2;
  }
  tls::CaResult result;
  std::string error;
  if (!tls::init_ca(options, result, error)) {
    std::cerr << "pillion ca init: " << error << "\n";
    return 1;
  }
  report(result);
  return 0;
}

int run_issue(const CaFlags& flags) {
  tls::IssueOptions options;
  options.ca_dir = flags.dir;
  options.id = flags.id;
  options.out_dir = flags.out;
  options.dns_names = flags.dns;
  if (!parse_seconds("--ttl", flags.issue_ttl, options.ttl) ||
      !parse_seconds("--backdate", flags.backdate, options.backdate) ||
      !parse_key_type(flags.issue_key_type, options.key_type)) {
    return 2;
  }
  tls::CaResult result;
  std::string error;
  if (!tls::issue_certificate(options, result, error)) {
    std::cerr << "pillion ca issue: " << error << "\n";
    return 1;
  }
  report(result);
  return 0;
}

}  // namespace

Command add_ca_command(CLI::App& app) {
  auto flags = std::make_shared<CaFlags>();
  auto* cmd = app.add_subcommand(
      "ca",
      "A small certificate authority for mutual TLS: `init` makes a CA, `issue` a workload "
      "certificate (cert.pem, key.pem, ca.pem) whose URI SAN is its SPIFFE ID. For tests, demos "
      "and small fleets; large fleets mount the same files from cert-manager or SPIRE "
      "(docs/mtls.md).");
  cmd->require_subcommand(1);

  auto* init = cmd->add_subcommand(
      "init", "Create a self-signed CA in --dir: ca.pem and ca.key (mode 0600).");
  init->add_option("--dir", flags->dir, "directory for ca.pem and ca.key (created if missing)")
      ->type_name("DIR")
      ->required();
  init->add_option("--trust-domain", flags->trust_domain,
                   "SPIFFE trust domain; the CA's URI SAN is spiffe://<trust-domain>")
      ->type_name("NAME")
      ->capture_default_str();
  init->add_option("--ttl", flags->init_ttl, "how long the CA is valid")
      ->type_name("DURATION")
      ->capture_default_str();
  init->add_option("--key-type", flags->init_key_type, "ecdsa (P-256) or rsa (2048 bits)")
      ->type_name("TYPE")
      ->capture_default_str();
  init->add_flag("--force", flags->force,
                 "replace an existing CA (certificates it issued stop verifying)");

  auto* issue = cmd->add_subcommand(
      "issue",
      "Issue a workload certificate signed by the CA in --dir: --out gets cert.pem, key.pem "
      "(mode 0600) and ca.pem.");
  issue->add_option("--dir", flags->dir, "directory of the CA (from `pillion ca init`)")
      ->type_name("DIR")
      ->required();
  issue
      ->add_option("--id", flags->id,
                   "the workload's SPIFFE ID, e.g. spiffe://cluster.local/ns/prod/sa/payments; "
                   "its trust domain must be the CA's")
      ->type_name("SPIFFE_ID")
      ->required();
  issue->add_option("--out", flags->out, "directory for cert.pem, key.pem and ca.pem")
      ->type_name("DIR")
      ->required();
  issue->add_option("--ttl", flags->issue_ttl, "how long the certificate is valid")
      ->type_name("DURATION")
      ->capture_default_str();
  issue->add_option("--dns", flags->dns, "an extra DNS SAN (repeatable)")->type_name("NAME");
  issue
      ->add_option("--backdate", flags->backdate,
                   "start validity this long before now (notAfter = notBefore + ttl)")
      ->type_name("DURATION")
      ->capture_default_str();
  issue->add_option("--key-type", flags->issue_key_type, "ecdsa (P-256) or rsa (2048 bits)")
      ->type_name("TYPE")
      ->capture_default_str();

  return {"ca", [flags, init, issue] {
            if (init->parsed()) {
              return run_init(*flags);
            }
            if (issue->parsed()) {
              return run_issue(*flags);
            }
            return 2;
          }};
}

}  // namespace pillion::cli
