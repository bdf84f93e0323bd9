#pragma once
// Owns every cluster's shared state and one background thread that runs the active health
// checks and DNS refreshes of all clusters (never a worker: the data path does not wait on
// either).
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/schema.h"
#include "upstream/cluster_state.h"

namespace pillion::upstream {

class ClusterManager {
 public:
  explicit ClusterManager(size_t workers);
  ~ClusterManager();  // stops the background thread

  // The states of `snapshot`'s clusters, in its order. A cluster whose config equals the one
  // already running keeps its state; new or changed ones are built (names resolved now, once,
  // synchronously) and get their health checker and DNS refresher; dropped ones stop theirs.
  // Empty with `error` set when a name cannot be resolved: then nothing changed.
  std::vector<ClusterStatePtr> update(const config::Snapshot& snapshot, std::string& error);

  // Starts the background thread (idempotent).
  void start();
  void stop();

 private:
  struct Running;  // a cluster's state with its checker and refresher
  size_t workers_;
  boost::asio::io_context context_;
  // Keeps the background thread idling while no check or refresh is pending.
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::map<std::string, std::shared_ptr<Running>> running_;
  std::thread thread_;
  bool started_ = false;
};

}  // namespace pillion::upstream
