#include "logs/tailer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace pillion::logs {
namespace {

namespace fs = std::filesystem;

struct Collect : RecordSink {
  bool add(std::string_view text, const RecordOrigin& origin) override {
    records.emplace_back(text);
    origins.push_back(origin);
    return true;
  }
  std::vector<std::string> records;
  std::vector<RecordOrigin> origins;
};

class TailerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pillion-tailer-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    input_.paths = {(dir_ / "*.log").string()};
    input_.rotate_wait = Millis(0);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void append(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::app) << text;
  }

  // One scan + poll; acknowledges everything, like a sink that always succeeds.
  std::vector<std::string> step(Tailer& t, bool final = false) {
    Collect c;
    t.scan(Clock::now());
    t.poll(Clock::now(), c, final);
    for (const auto& o : c.origins) {
      t.commit(o.handle, o.end);
    }
    last_ = c.origins;
    return c.records;
  }

  fs::path dir_;
  InputConfig input_;
  ParserConfig parser_;
  Metrics metrics_;
  std::vector<RecordOrigin> last_;
};

using V = std::vector<std::string>;

TEST_F(TailerTest, ReadsCompleteLinesOnlyAndResumes) {
  Tailer t(input_, parser_, metrics_);
  append("a.log", "one\ntw");
  EXPECT_EQ(step(t), V{"one"});
  append("a.log", "o\r\nthree\n");
  EXPECT_EQ(step(t), (V{"two", "three"}));
  EXPECT_EQ(last_[0].start, 4u);
  EXPECT_EQ(last_[1].end, 15u);
  EXPECT_EQ(step(t), V{});
  EXPECT_EQ(t.lag_bytes(), 0u);
}

TEST_F(TailerTest, RestartsFromTheCheckpointWithTheSameIds) {
  append("a.log", "one\ntwo\n");
  std::vector<FileState> states;
  uint64_t id = 0;
  {
    Tailer t(input_, parser_, metrics_);
    Collect c;
    t.scan(Clock::now());
    t.poll(Clock::now(), c);
    t.commit(c.origins[0].handle, c.origins[0].end);  // only "one" acknowledged
    states = t.states();
    id = c.origins[1].id_base;
  }
  Tailer t(input_, parser_, metrics_);
  t.restore(states);
  EXPECT_EQ(step(t), V{"two"});
  EXPECT_EQ(last_[0].id_base, id);
  EXPECT_EQ(last_[0].start, 4u);
}

TEST_F(TailerTest, RestoredOffsetIsNotTrustedWhenTheFirstLineChanged) {
  // Same device+inode, other content, longer than the saved offset (rewritten in place, or an
  // inode reused): the fingerprint tells, and the file is read from 0 under new ids.
  append("a.log", "one\ntwo\n");
  std::vector<FileState> states;
  uint64_t id = 0;
  {
    Tailer t(input_, parser_, metrics_);
    EXPECT_EQ(step(t), (V{"one", "two"}));
    states = t.states();
    id = last_[0].id_base;
  }
  std::ofstream(dir_ / "a.log", std::ios::trunc) << "alpha\nbeta\ngamma\n";
  Tailer t(input_, parser_, metrics_);
  t.restore(states);
  EXPECT_EQ(step(t), (V{"alpha", "beta", "gamma"}));
  EXPECT_NE(last_[0].id_base, id);
  EXPECT_EQ(last_[0].start, 0u);
}

TEST_F(TailerTest, LongLinesAreCutAndFlagged) {
  parser_.max_line_bytes = 64;
  Tailer t(input_, parser_, metrics_);
  append("a.log", std::string(200, 'x'));
  EXPECT_EQ(step(t), V{});  // no newline yet: nothing is complete
  append("a.log", "\nshort\n");
  const auto records = step(t);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0], std::string(64, 'x'));
  EXPECT_TRUE(last_[0].truncated);
  EXPECT_EQ(last_[0].end, 201u);
  EXPECT_EQ(records[1], "short");
  EXPECT_FALSE(last_[1].truncated);
}

TEST_F(TailerTest, MultilineJoinsIndentedLines) {
  parser_.multiline = Multiline::kIndent;
  parser_.multiline_timeout = Millis(0);
  Tailer t(input_, parser_, metrics_);
  append("a.log", "first\n  at a\n\tat b\nsecond\n");
  EXPECT_EQ(step(t), (V{"first\n  at a\n\tat b", "second"}));
}

TEST_F(TailerTest, CopytruncateDrainsTheCopyThenStartsOver) {
  Tailer t(input_, parser_, metrics_);
  append("a.log", "one\n");
  EXPECT_EQ(step(t), V{"one"});
  const uint64_t first_id = last_[0].id_base;
  append("a.log", "two\n");
  fs::copy_file(dir_ / "a.log", dir_ / "a.log.1");
  fs::resize_file(dir_ / "a.log", 0);
  append("a.log", "three\n");
  auto records = step(t);
  for (int i = 0; i < 3 && records.size() < 2; ++i) {
    const auto more = step(t);
    records.insert(records.end(), more.begin(), more.end());
  }
  EXPECT_EQ(records, (V{"two", "three"}));
  EXPECT_NE(last_.back().id_base, first_id);  // a new generation: new ids
  EXPECT_EQ(metrics_.truncations, 1u);
}

TEST_F(TailerTest, TwoCopytruncatesBetweenPollsLoseNothing) {
  Tailer t(input_, parser_, metrics_);
  append("a.log", "one\n");
  EXPECT_EQ(step(t), V{"one"});
  append("a.log", "two\n");
  fs::copy_file(dir_ / "a.log", dir_ / "a.log.1");
  fs::resize_file(dir_ / "a.log", 0);
  append("a.log", "three\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // distinct copy mtimes
  fs::copy_file(dir_ / "a.log", dir_ / "a.log.2");
  fs::resize_file(dir_ / "a.log", 0);
  append("a.log", "four\n");
  V records;
  for (int i = 0; i < 8; ++i) {
    const auto more = step(t);
    records.insert(records.end(), more.begin(), more.end());
  }
  EXPECT_EQ(records, (V{"two", "three", "four"}));
}

TEST_F(TailerTest, RenamedFileIsDrainedAndClosed) {
  Tailer t(input_, parser_, metrics_);
  append("a.log", "one\n");
  EXPECT_EQ(step(t), V{"one"});
  fs::rename(dir_ / "a.log", dir_ / "a.log.1");
  append("a.log.1", "late\n");  // the app wrote once more before reopening
  append("a.log", "new\n");
  auto records = step(t);
  std::sort(records.begin(), records.end());
  EXPECT_EQ(records, (V{"late", "new"}));
  t.close_finished(Clock::now());
  EXPECT_EQ(t.open_files(), 1u);
}

TEST_F(TailerTest, ReadFromEndSkipsWhatIsThereAtTheFirstStartOnly) {
  input_.read_from_end = true;
  append("a.log", "old\n");
  Tailer t(input_, parser_, metrics_);
  EXPECT_EQ(step(t), V{});
  append("a.log", "new\n");
  append("b.log", "later file\n");  // found after the first scan: read from its start
  auto records = step(t);
  std::sort(records.begin(), records.end());
  EXPECT_EQ(records, (V{"later file", "new"}));
}

TEST_F(TailerTest, MultilineRecordAtEndOfFileWaitsForTheTimeout) {
  parser_.multiline = Multiline::kIndent;
  parser_.multiline_timeout = Millis(200);
  Tailer t(input_, parser_, metrics_);
  append("a.log", "first\n  more\n");
  EXPECT_EQ(step(t), V{});  // more continuation lines may come
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(step(t), V{"first\n  more"});
}

}  // namespace
}  // namespace pillion::logs
