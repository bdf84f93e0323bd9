#pragma once
// A fixed-capacity byte buffer for one connection direction: [begin, end) holds unconsumed
// bytes, reads go after end. Allocated once per connection; never grows, so memory per
// connection is bounded no matter what a peer sends.
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace pillion::core {

class Buffer {
 public:
  explicit Buffer(size_t capacity) : data_(new char[capacity]), capacity_(capacity) {}

  std::string_view view() const { return {data_.get() + begin_, end_ - begin_}; }
  const char* data() const { return data_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  size_t capacity() const { return capacity_; }

  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) {
      begin_ = end_ = 0;
    }
  }
  void clear() { begin_ = end_ = 0; }

  // Space to read into; moves unconsumed bytes to the front first when that makes room.
  char* write_pointer() {
    if (begin_ > 0 && end_ == capacity_) {
      compact();
    }
    return data_.get() + end_;
  }
  size_t write_space() const {
    return begin_ > 0 && end_ == capacity_ ? capacity_ - size() : capacity_ - end_;
  }
  void commit(size_t n) { end_ += n; }
  void compact() {
    if (begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
  }
  bool full() const { return size() == capacity_; }

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace pillion::core
