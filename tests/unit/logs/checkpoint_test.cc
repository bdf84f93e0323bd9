#include "logs/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace pillion::logs {
namespace {

std::string temp_path(const std::string& name) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("pillion-logs-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(Checkpoint, RoundTrip) {
  CheckpointStore store(temp_path("cp.json"));
  std::filesystem::remove(store.path());
  EXPECT_TRUE(store.load().empty());
  const std::vector<FileState> states{{1, 2, 3, true, 4, 5, "/var/log/a b.log"},
                                      {6, 7, 0, false, 0, 0, "/x"}};
  store.save(states);
  EXPECT_EQ(store.load(), states);
}

TEST(Checkpoint, CorruptFileIsAnError) {
  CheckpointStore store(temp_path("bad.json"));
  std::ofstream(store.path()) << "{oops";
  EXPECT_THROW(store.load(), std::runtime_error);
}

}  // namespace
}  // namespace pillion::logs
