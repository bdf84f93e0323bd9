# Fuzz targets of src/logs.
pillion_fuzz_target(logs_parser_fuzz logs_parser_fuzz.cc LIBS pillion_logs)
