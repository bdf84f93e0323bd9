#include "observe/access_log.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace pillion::observe {
namespace {

AccessLogEntry sample_entry() {
  AccessLogEntry entry;
  entry.start = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764468691123));
  entry.request_id = "rid";
  entry.method = "GET";
  entry.path = "/a b\"c";
  entry.protocol = "HTTP/1.1";
  entry.client = "127.0.0.1:5000";
  entry.upstream_host = "127.0.0.1:8080";
  entry.listener = "explicit";
  entry.status = 502;
  entry.bytes_received = 3;
  entry.bytes_sent = 40;
  entry.duration_us = 1500;
  entry.upstream_us = -1;
  entry.attempts = 1;
  entry.flags = flag_bit(Flag::kUpstreamConnectFailure) | flag_bit(Flag::kUpstreamTimeout);
  return entry;
}

TEST(AccessLogFormat, TextLineHasEveryFieldAndEscapesSpaces) {
  std::string out;
  format_text(sample_entry(), out);
  EXPECT_EQ(out,
            "[2025-11-30T02:11:31.123Z] request_id=rid method=GET path=/a%20b%22c "
            "protocol=HTTP/1.1 status=502 flags=UF,UT bytes_in=3 bytes=40 latency_ms=1 "
            "duration_us=1500 upstream=127.0.0.1:8080 upstream_us=- attempts=1 "
            "client=127.0.0.1:5000 listener=explicit\n");
}

TEST(AccessLogFormat, JsonLineParses) {
  std::string out;
  format_json(sample_entry(), out);
  auto json = nlohmann::json::parse(out);
  EXPECT_EQ(json["path"], "/a b\"c");
  EXPECT_EQ(json["status"], 502);
  EXPECT_EQ(json["flags"], "UF,UT");
  EXPECT_TRUE(json["upstream_us"].is_null());
  EXPECT_EQ(json["time"], "2025-11-30T02:11:31.123Z");
}

TEST(AccessLogWriter, WritesBatchesAndReopensAfterRotation) {
  auto dir =
      std::filesystem::temp_directory_path() / ("pillion-access-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "access.log";
  Counter dropped;
  AccessLogWriter writer(path.string(), dropped);
  std::string error;
  ASSERT_TRUE(writer.start(error)) << error;
  AccessLogBuffer buffer(&writer, config::AccessLogFormat::kText);
  buffer.log(sample_entry());
  buffer.flush();
  // Rotate: rename, then ask for a reopen; the next batch must land in a new file.
  for (int i = 0; i < 200 && std::filesystem::file_size(path) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::filesystem::rename(path, dir / "access.log.1");
  writer.reopen();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  buffer.log(sample_entry());
  buffer.flush();
  writer.stop();
  std::ifstream rotated(dir / "access.log.1");
  std::ifstream fresh(path);
  std::stringstream a, b;
  a << rotated.rdbuf();
  b << fresh.rdbuf();
  EXPECT_NE(a.str().find("request_id=rid"), std::string::npos);
  EXPECT_NE(b.str().find("request_id=rid"), std::string::npos);
  EXPECT_EQ(dropped.get(), 0u);
  std::filesystem::remove_all(dir);
}

TEST(AccessLogWriter, DropsAndCountsWhenTheQueueIsFull) {
  Counter dropped;
  AccessLogWriter writer("/dev/null", dropped);  // not started: nothing drains the queue
  std::string big(AccessLogWriter::kMaxQueuedBytes / 2 + 1, 'x');
  writer.submit(std::string(big));
  writer.submit(std::string(big));
  EXPECT_EQ(dropped.get(), 1u);
}

}  // namespace
}  // namespace pillion::observe
