# fuzz targets for src/tls
pillion_fuzz_target(spiffe_id_fuzz spiffe_id_fuzz.cc LIBS pillion_tls_parse)
pillion_fuzz_target(client_hello_fuzz client_hello_fuzz.cc LIBS pillion_tls_parse)
