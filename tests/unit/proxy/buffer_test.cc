#include "core/buffer.h"

#include <gtest/gtest.h>

namespace pillion::core {
namespace {

TEST(Buffer, ConsumeCommitAndCompactKeepBytesInOrder) {
  Buffer buffer(8);
  std::memcpy(buffer.write_pointer(), "abcdefgh", 8);
  buffer.commit(8);
  EXPECT_TRUE(buffer.full());
  EXPECT_EQ(buffer.write_space(), 0u);
  buffer.consume(5);
  EXPECT_EQ(buffer.view(), "fgh");
  // A full tail with consumed bytes in front: writing compacts first.
  EXPECT_EQ(buffer.write_space(), 5u);
  std::memcpy(buffer.write_pointer(), "ij", 2);
  buffer.commit(2);
  EXPECT_EQ(buffer.view(), "fghij");
  buffer.consume(5);
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.write_space(), 8u);
}

}  // namespace
}  // namespace pillion::core
