# Fuzz targets of the trace propagation codecs (src/http/b3, src/http/propagation).
pillion_fuzz_target(b3_single_fuzz b3_single_fuzz.cc LIBS pillion_http)
pillion_fuzz_target(b3_multi_fuzz b3_multi_fuzz.cc LIBS pillion_http)
pillion_fuzz_target(trace_headers_fuzz trace_headers_fuzz.cc LIBS pillion_http)
