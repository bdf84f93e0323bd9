#include "core/cgroup.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace pillion::core {
namespace {

namespace fs = std::filesystem;

TEST(ParseCpuMax, Values) {
  EXPECT_EQ(parse_cpu_max("max 100000"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("max 100000\n"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("150000 100000"), 1.5);
  EXPECT_EQ(parse_cpu_max("150000 100000\n"), 1.5);
  EXPECT_EQ(parse_cpu_max("50000 100000"), 0.5);
}

TEST(ParseCpuMax, Bad) {
  EXPECT_EQ(parse_cpu_max(""), std::nullopt);
  EXPECT_EQ(parse_cpu_max("150000"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("x 100000"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("0 100000"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("100000 0"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("-5 100000"), std::nullopt);
}

TEST(ParseCfsQuota, Values) {
  EXPECT_EQ(parse_cfs_quota("-1", "100000"), std::nullopt);
  EXPECT_EQ(parse_cfs_quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_EQ(parse_cfs_quota("200000\n", "100000\n"), 2.0);
  EXPECT_EQ(parse_cfs_quota("25000", "100000"), 0.25);
  EXPECT_EQ(parse_cfs_quota("abc", "100000"), std::nullopt);
  EXPECT_EQ(parse_cfs_quota("100000", ""), std::nullopt);
}

// A fake cgroup root in a fresh temporary directory.
class DefaultWorkerCount : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "pillion_cgroup_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    cpu_set_t set;
    ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
    available_ = CPU_COUNT(&set);
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& relative, const std::string& content) {
    fs::create_directories((root_ / relative).parent_path());
    std::ofstream(root_ / relative) << content;
  }
  int count() { return default_worker_count(root_.string()); }

  fs::path root_;
  int available_ = 0;
};

TEST_F(DefaultWorkerCount, RoundsTheQuotaUp) {
  write("cpu.max", "150000 100000\n");
  EXPECT_EQ(count(), std::min(2, available_));
}

TEST_F(DefaultWorkerCount, SmallQuotaGivesOneWorker) {
  write("cpu.max", "1000 100000\n");
  EXPECT_EQ(count(), 1);
}

TEST_F(DefaultWorkerCount, ClampsToAvailableCpus) {
  write("cpu.max", "100000000 100000\n");
  EXPECT_EQ(count(), available_);
}

TEST_F(DefaultWorkerCount, UnlimitedUsesAvailableCpus) {
  write("cpu.max", "max 100000\n");
  EXPECT_EQ(count(), available_);
}

TEST_F(DefaultWorkerCount, NoCgroupFilesUsesAvailableCpus) {
  EXPECT_EQ(count(), available_);
}

TEST_F(DefaultWorkerCount, CgroupV1Quota) {
  write("cpu/cpu.cfs_quota_us", "50000\n");
  write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(count(), 1);
  write("cpu/cpu.cfs_quota_us", "-1\n");
  EXPECT_EQ(count(), available_);
}

TEST_F(DefaultWorkerCount, CgroupV2WinsOverV1) {
  write("cpu.max", "100000 100000\n");
  write("cpu/cpu.cfs_quota_us", "400000\n");
  write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(count(), 1);
}

}  // namespace
}  // namespace pillion::core
