#pragma once
// The SPIFFE IDs of mutual-TLS clients as a bounded metric label: the first kMax distinct IDs
// get a slot each, later ones share "other". A slot is taken once per connection (after the
// handshake), never per request, so the lock here is off the request path.
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pillion::observe {

class PeerIds {
 public:
  static constexpr size_t kMax = 64;
  static constexpr size_t kOther = kMax;  // the slot of IDs beyond the first kMax

  size_t slot(std::string_view id) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] == id) {
        return i;
      }
    }
    if (ids_.size() == kMax) {
      return kOther;
    }
    ids_.emplace_back(id);
    return ids_.size() - 1;
  }

  std::vector<std::string> ids() const {
    std::lock_guard lock(mutex_);
    return ids_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> ids_;
};

}  // namespace pillion::observe
