#include "core/file_watcher.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <string>

namespace pillion::core {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class FileWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "pillion-files-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    fs::create_directories(dir_ / "a");
    fs::create_directories(dir_ / "b");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static void write(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
  }

  void run_for(std::chrono::milliseconds time) {
    context_.restart();
    context_.run_for(time);
  }

  void run_until_checked(std::chrono::milliseconds limit = 3s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    int before = checks_;
    while (checks_ == before && std::chrono::steady_clock::now() < deadline) {
      run_for(20ms);
    }
  }

  FileWatcher watch(FileWatcherOptions options) {
    return FileWatcher(
        context_, {(dir_ / "a" / "one.pem").string(), (dir_ / "b" / "two.pem").string()},
        [this] { ++checks_; }, options);
  }

  fs::path dir_;
  boost::asio::io_context context_;
  int checks_ = 0;
};

TEST_F(FileWatcherTest, AChangeToAnyPathIsOneCheckAfterTheQuietTime) {
  FileWatcherOptions options;
  options.poll_interval = 0ms;  // inotify alone, so polling cannot hide a missed event
  auto watcher = watch(options);
  ASSERT_TRUE(watcher.start());
  ASSERT_TRUE(watcher.inotify_active());
  run_for(50ms);
  EXPECT_EQ(checks_, 0);

  // A burst of writes in the second path's directory: one check, once quiet.
  for (int i = 0; i < 5; ++i) {
    write(dir_ / "b" / "two.pem", "v" + std::to_string(i));
  }
  run_until_checked();
  run_for(300ms);
  EXPECT_EQ(checks_, 1);

  write(dir_ / "a" / "one.pem", "x");
  run_until_checked();
  EXPECT_EQ(checks_, 2);
}

TEST_F(FileWatcherTest, FollowsASymlinkTargetIntoAnotherDirectory) {
  fs::create_directories(dir_ / "real1");
  write(dir_ / "real1" / "one.pem", "first");
  fs::create_symlink(dir_ / "real1" / "one.pem", dir_ / "a" / "one.pem");
  FileWatcherOptions options;
  options.poll_interval = 0ms;
  auto watcher = watch(options);
  ASSERT_TRUE(watcher.start());

  // Edited in place behind the link: only the target's directory sees it.
  write(dir_ / "real1" / "one.pem", "second");
  run_until_checked();
  EXPECT_EQ(checks_, 1);
}

TEST_F(FileWatcherTest, PollsWithoutInotifyAndStopsWhenStopped) {
  FileWatcherOptions options;
  options.poll_interval = 50ms;
  options.use_inotify = false;
  auto watcher = watch(options);
  ASSERT_TRUE(watcher.start());
  EXPECT_FALSE(watcher.inotify_active());
  run_for(400ms);
  EXPECT_GE(checks_, 3);  // nothing changed: the owner decides by content
  watcher.stop();
  int stopped_at = checks_;
  run_for(200ms);
  EXPECT_EQ(checks_, stopped_at);
}

TEST_F(FileWatcherTest, NeitherInotifyNorPollingIsRefused) {
  FileWatcherOptions options;
  options.poll_interval = 0ms;
  options.use_inotify = false;
  auto watcher = watch(options);
  EXPECT_FALSE(watcher.start());
}

TEST(ReadWholeFile, ReadsThroughSymlinksAndSaysWhenMissing) {
  std::string pattern = (fs::temp_directory_path() / "pillion-read-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  fs::path dir = pattern;
  std::string big(100 * 1024, 'k');  // more than one read
  { std::ofstream(dir / "file") << big; }
  fs::create_symlink(dir / "file", dir / "link");
  EXPECT_EQ(read_whole_file((dir / "link").string()), big);
  EXPECT_EQ(read_whole_file((dir / "missing").string()), std::nullopt);
  EXPECT_EQ(read_whole_file(dir.string()), std::nullopt);  // a directory: read fails
  fs::remove_all(dir);
}

TEST(ContentHash, DiffersByContentAndChains) {
  EXPECT_EQ(content_hash("abc"), content_hash("abc"));
  EXPECT_NE(content_hash("abc"), content_hash("abd"));
  EXPECT_EQ(content_hash("c", content_hash("ab")), content_hash("abc"));
}

}  // namespace
}  // namespace pillion::core
