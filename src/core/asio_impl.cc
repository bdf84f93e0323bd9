// Compiles Asio and Beast once for the whole program (separate compilation), so no other
// file pays for their implementation headers.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
