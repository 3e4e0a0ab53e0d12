# L7 benchmarks, included from tests/bench/CMakeLists.txt: http_backend (keep-alive HTTP backend), the wrk-based HTTP driver and the GPU-farm streaming driver.
add_executable(http_backend http_backend.c)

# Full HTTP run (~6 min: 3 scenarios x 4 paths x 3 repeats x 10 s): opt-in with `ctest -L '^bench$'`.
add_test(NAME bench.http
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/http_bench.py
                 --voro $<TARGET_FILE:voro> --http-backend $<TARGET_FILE:http_backend>
                 --json-out ${CMAKE_CURRENT_BINARY_DIR}/http_bench_results.json
                 --md-out ${CMAKE_CURRENT_BINARY_DIR}/http_bench_results.md)
set_tests_properties(bench.http PROPERTIES LABELS "bench" TIMEOUT 1800 RUN_SERIAL TRUE)

# Full GPU-farm run (~10 min with every balancer): steady load, slowdown, streaming latency.
add_test(NAME bench.gpu_farm
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/gpu_farm_bench.py
                 --voro $<TARGET_FILE:voro> --gpusim $<TARGET_FILE:gpusim>
                 --openloop ${CMAKE_CURRENT_SOURCE_DIR}/openloop.py
                 --json-out ${CMAKE_CURRENT_BINARY_DIR}/gpu_farm_results.json
                 --md-out ${CMAKE_CURRENT_BINARY_DIR}/gpu_farm_results.md)
set_tests_properties(bench.gpu_farm PROPERTIES LABELS "bench" TIMEOUT 2400 RUN_SERIAL TRUE)

# Smokes (< 60 s each): every present proxy must answer every request correctly; Voro must run (its
# failing to start fails the smoke); run through expect_run.py (tests/bench/CMakeLists.txt), which
# checks the exit status and that Voro's row says ok.
add_test(NAME bench.http_smoke
         COMMAND ${VORO_EXPECT_RUN} --exit 0 --expect [=[^- Voro: ok \(1 repeats\)$]=] --
                 ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/http_bench.py --smoke
                 --voro $<TARGET_FILE:voro> --http-backend $<TARGET_FILE:http_backend>
                 --json-out ${CMAKE_CURRENT_BINARY_DIR}/http_bench_smoke.json
                 --md-out ${CMAKE_CURRENT_BINARY_DIR}/http_bench_smoke.md)
set_tests_properties(bench.http_smoke PROPERTIES LABELS "bench-smoke" TIMEOUT 120 RUN_SERIAL TRUE)

add_test(NAME bench.gpu_farm_smoke
         COMMAND ${VORO_EXPECT_RUN} --exit 0 --expect [=[^\| Voro gpu_aware \|.*\| ok \(1 runs\) \|$]=]
                 --expect [=[^\| Voro \|.*\| ok \|$]=] --
                 ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/gpu_farm_bench.py --smoke
                 --voro $<TARGET_FILE:voro> --gpusim $<TARGET_FILE:gpusim>
                 --openloop ${CMAKE_CURRENT_SOURCE_DIR}/openloop.py
                 --json-out ${CMAKE_CURRENT_BINARY_DIR}/gpu_farm_smoke.json
                 --md-out ${CMAKE_CURRENT_BINARY_DIR}/gpu_farm_smoke.md)
set_tests_properties(bench.gpu_farm_smoke PROPERTIES LABELS "bench-smoke" TIMEOUT 120 RUN_SERIAL TRUE)

# SSE streams (2,000 concurrent through one gpusim): memory per stream and proxy CPU per token, Voro against
# HAProxy and nginx in the same run (~2 min). Smoke (< 60 s): 200 streams, every present proxy must deliver all tokens.
add_test(NAME bench.sse
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/sse_bench.py
                 --voro $<TARGET_FILE:voro> --gpusim $<TARGET_FILE:gpusim>
                 --load ${CMAKE_SOURCE_DIR}/tests/integration/scale_load.py
                 --json-out ${CMAKE_CURRENT_BINARY_DIR}/sse_bench_results.json
                 --md-out ${CMAKE_CURRENT_BINARY_DIR}/sse_bench_results.md)
set_tests_properties(bench.sse PROPERTIES LABELS "bench" TIMEOUT 1800 RUN_SERIAL TRUE)

add_test(NAME bench.sse_smoke
         COMMAND ${VORO_EXPECT_RUN} --exit 0 --expect [=[^\| Voro \|.*\| ok \(1 runs\) \|$]=] --
                 ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/sse_bench.py --smoke
                 --voro $<TARGET_FILE:voro> --gpusim $<TARGET_FILE:gpusim>
                 --load ${CMAKE_SOURCE_DIR}/tests/integration/scale_load.py
                 --json-out ${CMAKE_CURRENT_BINARY_DIR}/sse_bench_smoke.json
                 --md-out ${CMAKE_CURRENT_BINARY_DIR}/sse_bench_smoke.md)
set_tests_properties(bench.sse_smoke PROPERTIES LABELS "bench-smoke" TIMEOUT 120 RUN_SERIAL TRUE)
