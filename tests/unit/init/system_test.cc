// The parts that touch the system: the process runner, failure messages, the capability check.
#include <gtest/gtest.h>
#include <linux/capability.h>

#include <cerrno>
#include <csignal>
#include <string>

#include "init/capability.h"
#include "init/iptables.h"
#include "init/process.h"

namespace pillion::init {
namespace {

TEST(InitProcess, FeedsStdinAndCollectsBothStreams) {
  std::signal(SIGPIPE, SIG_IGN);
  std::string big(1 << 20, 'x');  // larger than a pipe buffer both ways
  const auto result = run_process({"sh", "-c", "cat; echo oops >&2; exit 3"}, big);
  EXPECT_EQ(result.spawn_errno, 0);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.out, big);
  EXPECT_EQ(result.err, "oops\n");
  EXPECT_FALSE(result.ok());
}

TEST(InitProcess, ChildThatIgnoresStdinDoesNotHangUs) {
  std::signal(SIGPIPE, SIG_IGN);
  const auto result = run_process({"true"}, std::string(1 << 20, 'x'));
  EXPECT_TRUE(result.ok());
}

TEST(InitProcess, MissingProgramIsReportedNotThrown) {
  const auto result = run_process({"pillion-no-such-program"}, "");
  EXPECT_EQ(result.spawn_errno, ENOENT);
  EXPECT_EQ(explain_failure("pillion-no-such-program -t nat", result),
            "pillion-no-such-program not found in PATH (install the iptables package)");
}

TEST(InitIptables, PermissionDeniedNamesTheCapability) {
  ProcessResult result;
  result.exit_code = 4;
  result.err =
      "iptables-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission "
      "denied (you must be root)\n";
  const auto message = explain_failure("iptables-restore --noflush", result);
  EXPECT_NE(message.find("CAP_NET_ADMIN is missing"), std::string::npos) << message;
  EXPECT_EQ(message.rfind("iptables-restore --noflush: ", 0), 0u) << message;
}

TEST(InitIptables, OtherFailuresQuoteTheFirstLinesOfStderr) {
  ProcessResult result;
  result.exit_code = 2;
  result.err = "iptables-restore: Chain 'X' does not exist\nError occurred at line: 3\nTry more\n";
  EXPECT_EQ(explain_failure("iptables-restore --noflush", result),
            "iptables-restore --noflush failed (exit 2): iptables-restore: Chain 'X' does not "
            "exist; Error occurred at line: 3");
}

TEST(InitCapability, ReadsTheEffectiveSet) {
  const std::string with = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
  const std::string without = "Name:\tx\nCapEff:\t000001fffeffefff\nCapBnd:\t000001ffffffffff\n";
  EXPECT_TRUE(has_effective_capability(with, CAP_NET_ADMIN));
  EXPECT_FALSE(has_effective_capability(without, CAP_NET_ADMIN));
  EXPECT_TRUE(has_effective_capability(without, CAP_NET_RAW));
  EXPECT_FALSE(has_effective_capability("Name:\tx\n", CAP_NET_ADMIN));
}

}  // namespace
}  // namespace pillion::init
