// Compiles Asio's SSL support once (separate compilation, as src/core/asio_impl.cc does for the
// rest of Asio): pillion_core does not link OpenSSL, so it lives here.
#include <boost/asio/ssl/impl/src.hpp>
