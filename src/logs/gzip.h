#pragma once
// gzip (RFC 1952) compression of a request body with zlib.
#include <string>
#include <string_view>

namespace pillion::logs {

// Compresses at zlib level 1: log text shrinks ~10x even so, and the adapter's CPU is better
// spent parsing. Throws std::runtime_error if zlib fails (out of memory).
std::string gzip_compress(std::string_view data);

}  // namespace pillion::logs
