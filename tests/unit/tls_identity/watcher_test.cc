#include "tls/identity_watcher.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_certs.h"

namespace pillion::tls {
namespace {

namespace fs = std::filesystem;
using testing::LeafOptions;
using testing::Pem;
using testing::TempDir;
using testing::TestCa;
using testing::write_file;
using namespace std::chrono_literals;

constexpr const char* kId = "spiffe://cluster.local/ns/prod/sa/payments";

// The layout of a Kubernetes Secret volume: DIR/cert.pem -> ..data/cert.pem,
// DIR/..data -> ..<timestamp>, rotated by renaming a new ..data symlink over the old one.
class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    files_.cert = dir_.file("cert.pem");
    files_.key = dir_.file("key.pem");
    files_.ca = dir_.file("ca.pem");
    first_ = ca_.issue(kId);
    publish(first_.cert, first_.key, ca_.cert_pem());
    for (const char* name : {"cert.pem", "key.pem", "ca.pem"}) {
      fs::create_symlink(fs::path("..data") / name, dir_.path() / name);
    }
    // Capture the log.
    sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink_));
  }
  void TearDown() override { spdlog::set_default_logger(previous_); }

  // Writes a new timestamped directory and swaps ..data to it atomically.
  void publish(const std::string& cert, const std::string& key, const std::string& ca) {
    auto name = "..2026_" + std::to_string(++generation_);
    auto target = dir_.path() / name;
    fs::create_directory(target);
    write_file(target / "cert.pem", cert);
    write_file(target / "key.pem", key);
    write_file(target / "ca.pem", ca);
    auto temporary = dir_.path() / "..data_tmp";
    fs::create_symlink(name, temporary);
    fs::rename(temporary, dir_.path() / "..data");
    if (!previous_target_.empty()) {
      fs::remove_all(previous_target_);
    }
    previous_target_ = target;
  }

  void run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      context_.restart();
      context_.run_for(20ms);
    }
  }

  bool logged(const std::string& text) const {
    for (const auto& line : sink_->last_formatted()) {
      if (line.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  // A poll must not see a file half-way through the test's own write.
  static void write_atomically(const std::string& path, const std::string& text) {
    write_file(path + ".tmp", text);
    fs::rename(path + ".tmp", path);
  }

  static IdentityWatcherOptions inotify_only() {
    IdentityWatcherOptions options;
    options.poll_interval = 0ms;
    return options;
  }

  TempDir dir_;
  TestCa ca_{"Test CA"};
  IdentityFiles files_;
  Pem first_;
  int generation_ = 0;
  fs::path previous_target_;
  boost::asio::io_context context_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(WatcherTest, ASymlinkSwapPublishesTheNewIdentity) {
  IdentityWatcher watcher(context_, files_, inotify_only());
  std::string error;
  ASSERT_TRUE(watcher.load(error)) << error;
  ASSERT_TRUE(watcher.start());
  EXPECT_TRUE(watcher.inotify_active());
  auto first = watcher.current();
  EXPECT_EQ(watcher.version(), 1u);
  IdentityReader reader(watcher);
  EXPECT_EQ(reader.get(), first);

  IdentityPtr rotated;
  watcher.set_on_rotate([&](const IdentityPtr& identity) { rotated = identity; });
  auto second = ca_.issue(kId);
  publish(second.cert, second.key, ca_.cert_pem());
  run_until([&] { return watcher.version() == 2; });

  ASSERT_EQ(watcher.version(), 2u);
  EXPECT_NE(watcher.current()->serial(), first->serial());
  EXPECT_EQ(rotated, watcher.current());
  EXPECT_EQ(reader.get(), watcher.current());
  EXPECT_EQ(watcher.rotations_ok(), 1u);
  EXPECT_EQ(watcher.rotations_failed(), 0u);
  EXPECT_TRUE(logged("workload certificate rotated: " + std::string(kId) + ", serial " +
                     watcher.current()->serial()));
  // The old identity is intact for the connections that still use it.
  EXPECT_NE(first->server_context(), nullptr);

  // A mismatched pair is rejected; the current identity stays.
  auto third = ca_.issue(kId);
  publish(third.cert, second.key, ca_.cert_pem());
  run_until([&] { return watcher.rotations_failed() == 1; });
  EXPECT_EQ(watcher.rotations_failed(), 1u);
  EXPECT_EQ(watcher.version(), 2u);
  EXPECT_EQ(watcher.current(), rotated);
  EXPECT_NE(watcher.last_error().find("does not match"), std::string::npos) << watcher.last_error();
  EXPECT_TRUE(logged("workload certificate not rotated"));

  // Then a good set again.
  publish(third.cert, third.key, ca_.cert_pem());
  run_until([&] { return watcher.version() == 3; });
  EXPECT_EQ(watcher.version(), 3u);
  EXPECT_EQ(watcher.rotations_ok(), 2u);

  auto json = watcher.certs_json();
  EXPECT_EQ(json["spiffe_id"], kId);
  EXPECT_EQ(json["serial"], watcher.current()->serial());
  EXPECT_EQ(json["rotations_ok"], 2);
  EXPECT_EQ(json["rotations_failed"], 1);
  EXPECT_GT(json["seconds_left"].get<int64_t>(), 23 * 3600);
  EXPECT_NE(json["ca_subject"].get<std::string>().find("CN=Test CA"), std::string::npos);
  EXPECT_TRUE(json["last_error"].is_string());
  EXPECT_EQ(json["files"]["key"], files_.key);
  // No key material in the admin output.
  EXPECT_EQ(json.dump().find("PRIVATE"), std::string::npos);
}

TEST_F(WatcherTest, PollingAloneSeesAnInPlaceRewrite) {
  IdentityFiles plain;
  plain.cert = dir_.file("plain-cert.pem");
  plain.key = dir_.file("plain-key.pem");
  plain.ca = dir_.file("plain-ca.pem");
  write_file(plain.cert, first_.cert);
  write_file(plain.key, first_.key);
  write_file(plain.ca, ca_.cert_pem());
  IdentityWatcherOptions options;
  options.use_inotify = false;
  options.poll_interval = 50ms;
  IdentityWatcher watcher(context_, plain, options);
  std::string error;
  ASSERT_TRUE(watcher.load(error)) << error;
  ASSERT_TRUE(watcher.start());
  EXPECT_FALSE(watcher.inotify_active());

  // Half-written: the new cert without its key yet is rejected, then the key arrives.
  auto next = ca_.issue(kId);
  write_atomically(plain.cert, next.cert);
  run_until([&] { return watcher.rotations_failed() == 1; });
  EXPECT_EQ(watcher.rotations_failed(), 1u);
  write_atomically(plain.key, next.key);
  run_until([&] { return watcher.version() == 2; });
  EXPECT_EQ(watcher.version(), 2u);
  EXPECT_EQ(watcher.rotations_failed(), 1u);  // the same bad content is not retried
}

TEST_F(WatcherTest, SameContentIsNoRotation) {
  IdentityWatcher watcher(context_, files_, inotify_only());
  std::string error;
  ASSERT_TRUE(watcher.load(error)) << error;
  ASSERT_TRUE(watcher.start());
  publish(first_.cert, first_.key, ca_.cert_pem());  // a swap to identical bytes
  context_.run_for(400ms);
  EXPECT_EQ(watcher.version(), 1u);
  EXPECT_EQ(watcher.rotations_ok(), 0u);
  EXPECT_FALSE(watcher.check_now());
}

TEST_F(WatcherTest, LoadFailsOnABadSet) {
  auto other = ca_.issue(kId);
  publish(first_.cert, other.key, ca_.cert_pem());
  IdentityWatcher watcher(context_, files_, inotify_only());
  std::string error;
  EXPECT_FALSE(watcher.load(error));
  EXPECT_EQ(error, files_.key + " does not match " + files_.cert);
  EXPECT_EQ(watcher.current(), nullptr);
  EXPECT_EQ(watcher.version(), 0u);
}

TEST_F(WatcherTest, WarnsWhenLittleLifetimeIsLeft) {
  LeafOptions options;
  options.uris = {kId};
  options.not_before_seconds = -3000;  // 50 of 60 minutes gone
  options.not_after_seconds = 600;
  auto leaf = ca_.issue(options);
  publish(leaf.cert, leaf.key, ca_.cert_pem());
  IdentityWatcher watcher(context_, files_, inotify_only());
  std::string error;
  ASSERT_TRUE(watcher.load(error)) << error;
  EXPECT_TRUE(logged("rotation may be failing"));
  EXPECT_TRUE(logged("(in 9m"));
}

}  // namespace
}  // namespace pillion::tls
