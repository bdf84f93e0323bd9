#include "proxy/config_watcher.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace pillion::proxy {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ConfigWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "pillion-watch-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static void write(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
  }

  // Runs the loop until `changes` holds `count` entries or `limit` passes; then a little more,
  // so a spurious extra callback would show.
  void run_until(size_t count, std::chrono::milliseconds limit = 3s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (changes_.size() < count && std::chrono::steady_clock::now() < deadline) {
      context_.restart();
      context_.run_for(20ms);
    }
    context_.restart();
    context_.run_for(300ms);
  }

  // inotify alone unless a test asks for polling, so polling cannot hide a missed event.
  static ConfigWatcherOptions inotify_only() {
    ConfigWatcherOptions options;
    options.poll_interval = 0ms;
    return options;
  }

  std::unique_ptr<ConfigWatcher> watch(const fs::path& path,
                                       ConfigWatcherOptions options = inotify_only()) {
    auto watcher = std::make_unique<ConfigWatcher>(
        context_, path.string(), [this](std::string content) { changes_.push_back(content); },
        options);
    EXPECT_TRUE(watcher->start());
    return watcher;
  }

  fs::path dir_;
  boost::asio::io_context context_;
  std::vector<std::string> changes_;
};

TEST_F(ConfigWatcherTest, PlainWrite) {
  auto file = dir_ / "pillion.yaml";
  write(file, "version: 1\n");
  auto watcher = watch(file);
  ASSERT_TRUE(watcher->inotify_active());
  context_.run_for(50ms);
  EXPECT_TRUE(changes_.empty());  // the content at start is the baseline
  write(file, "version: 2\n");
  run_until(1);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0], "version: 2\n");
}

TEST_F(ConfigWatcherTest, EditorRenameOver) {
  auto file = dir_ / "pillion.yaml";
  write(file, "a: 1\n");
  auto watcher = watch(file);
  // vim/emacs style: write a temporary file, then rename it over the original (a new inode).
  auto temp = dir_ / ".pillion.yaml.swp";
  write(temp, "a: 2\n");
  fs::permissions(temp, fs::perms::owner_read | fs::perms::owner_write);
  fs::rename(temp, file);
  run_until(1);
  ASSERT_EQ(changes_.size(), 1u);  // create + close_write + attrib + moved_to: one callback
  EXPECT_EQ(changes_[0], "a: 2\n");
  // The new inode is still watched (through its directory).
  write(file, "a: 3\n");
  run_until(2);
  ASSERT_EQ(changes_.size(), 2u);
  EXPECT_EQ(changes_[1], "a: 3\n");
}

// The layout kubelet writes for a ConfigMap volume, and its atomic update.
TEST_F(ConfigWatcherTest, ConfigMapDataSymlinkSwap) {
  fs::create_directory(dir_ / "..2026_11_30_08_00_00.1");
  write(dir_ / "..2026_11_30_08_00_00.1" / "pillion.yaml", "old: true\n");
  fs::create_directory_symlink("..2026_11_30_08_00_00.1", dir_ / "..data");
  fs::create_symlink("..data/pillion.yaml", dir_ / "pillion.yaml");
  auto watcher = watch(dir_ / "pillion.yaml");

  fs::create_directory(dir_ / "..2026_11_30_09_00_00.2");
  write(dir_ / "..2026_11_30_09_00_00.2" / "pillion.yaml", "new: true\n");
  fs::create_directory_symlink("..2026_11_30_09_00_00.2", dir_ / "..data_tmp");
  fs::rename(dir_ / "..data_tmp", dir_ / "..data");
  fs::remove_all(dir_ / "..2026_11_30_08_00_00.1");
  run_until(1);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0], "new: true\n");

  // A second swap is seen as well.
  fs::create_directory(dir_ / "..2026_11_30_10_00_00.3");
  write(dir_ / "..2026_11_30_10_00_00.3" / "pillion.yaml", "newer: true\n");
  fs::create_directory_symlink("..2026_11_30_10_00_00.3", dir_ / "..data_tmp");
  fs::rename(dir_ / "..data_tmp", dir_ / "..data");
  fs::remove_all(dir_ / "..2026_11_30_09_00_00.2");
  run_until(2);
  ASSERT_EQ(changes_.size(), 2u);
  EXPECT_EQ(changes_[1], "newer: true\n");
}

// An edit in place of the file a symlink in another directory points to.
TEST_F(ConfigWatcherTest, EditBehindSymlinkInOtherDirectory) {
  fs::create_directory(dir_ / "real");
  fs::create_directory(dir_ / "etc");
  write(dir_ / "real" / "pillion.yaml", "x: 1\n");
  fs::create_symlink(dir_ / "real" / "pillion.yaml", dir_ / "etc" / "pillion.yaml");
  auto watcher = watch(dir_ / "etc" / "pillion.yaml");
  write(dir_ / "real" / "pillion.yaml", "x: 2\n");
  run_until(1);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0], "x: 2\n");
}

TEST_F(ConfigWatcherTest, IdenticalRewriteIsNoChange) {
  auto file = dir_ / "pillion.yaml";
  write(file, "same: 1\n");
  auto watcher = watch(file);
  write(file, "same: 1\n");
  auto temp = dir_ / "tmp.yaml";
  write(temp, "same: 1\n");
  fs::rename(temp, file);
  fs::permissions(file, fs::perms::owner_all);
  run_until(1, 500ms);
  EXPECT_TRUE(changes_.empty());
  // And after a change, going back to the earlier content is a change again.
  write(file, "same: 2\n");
  run_until(1);
  write(file, "same: 1\n");
  run_until(2);
  ASSERT_EQ(changes_.size(), 2u);
  EXPECT_EQ(changes_[1], "same: 1\n");
}

TEST_F(ConfigWatcherTest, NotedContentIsNoChange) {
  auto file = dir_ / "pillion.yaml";
  write(file, "v: 1\n");
  auto watcher = watch(file);
  watcher->note_content("v: 2\n");  // a SIGHUP reload read this already
  write(file, "v: 2\n");
  run_until(1, 500ms);
  EXPECT_TRUE(changes_.empty());
}

TEST_F(ConfigWatcherTest, DeletedFileKeepsQuietUntilItReturns) {
  auto file = dir_ / "pillion.yaml";
  write(file, "v: 1\n");
  auto watcher = watch(file);
  fs::remove(file);
  run_until(1, 300ms);
  EXPECT_TRUE(changes_.empty());
  write(file, "v: 9\n");
  run_until(1);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0], "v: 9\n");
}

TEST_F(ConfigWatcherTest, PollingWithoutInotify) {
  auto file = dir_ / "pillion.yaml";
  write(file, "p: 1\n");
  ConfigWatcherOptions options;
  options.use_inotify = false;
  options.poll_interval = 50ms;
  auto watcher = watch(file, options);
  EXPECT_FALSE(watcher->inotify_active());
  write(file, "p: 1\n");
  run_until(1, 300ms);
  EXPECT_TRUE(changes_.empty());
  write(file, "p: 2\n");
  run_until(1);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0], "p: 2\n");
}

TEST_F(ConfigWatcherTest, BurstIsDebouncedIntoOneCallback) {
  auto file = dir_ / "pillion.yaml";
  write(file, "b: 0\n");
  auto options = inotify_only();
  options.debounce = 200ms;
  auto watcher = watch(file, options);
  for (int i = 1; i <= 5; ++i) {
    write(file, "b: " + std::to_string(i) + "\n");
    context_.run_for(20ms);
  }
  run_until(1);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0], "b: 5\n");
}

TEST_F(ConfigWatcherTest, StopEndsCallbacks) {
  auto file = dir_ / "pillion.yaml";
  write(file, "s: 1\n");
  auto watcher = watch(file);
  watcher->stop();
  write(file, "s: 2\n");
  run_until(1, 300ms);
  EXPECT_TRUE(changes_.empty());
  watcher.reset();
  context_.run_for(10ms);  // handlers still queued run against the released watcher safely
}

}  // namespace
}  // namespace pillion::proxy
