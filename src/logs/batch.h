#pragma once
// Records on their way to the output: their JSON, their document ids and the offsets to
// acknowledge. The batch is the only place records wait, so its limits bound the memory.
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "logs/tailer.h"

namespace pillion::logs {

struct BatchEntry {
  uint32_t begin = 0;   // of the document in Batch::docs
  uint32_t length = 0;  // including the trailing '\n'
  uint64_t handle = 0;
  uint64_t end = 0;      // offset to acknowledge
  uint64_t id_base = 0;  // file identity (device, inode, fingerprint, generation)
  uint64_t start = 0;    // offset of the record's first byte
};

// The document id: "<16 hex of file identity>-<hex start offset>". Formatted only by outputs
// that need it.
void append_doc_id(std::string& out, const BatchEntry& entry);

struct Batch {
  std::string docs;  // NDJSON: one document per line
  std::vector<BatchEntry> entries;
  Clock::time_point first_added;

  bool empty() const { return entries.empty(); }
  std::string_view doc(const BatchEntry& e) const { return {docs.data() + e.begin, e.length}; }
  void clear() {
    docs.clear();
    entries.clear();
  }
};

enum class Delivery { kDelivered, kStopped, kFailed };

// An output. deliver() returns once every record of the batch was acknowledged (kDelivered),
// when `stop` became true first (kStopped), or when retries ran out (kFailed).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Delivery deliver(const Batch& batch, const std::atomic<bool>& stop) = 0;
};

}  // namespace pillion::logs
