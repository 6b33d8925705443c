// SwiftPM links every executable with its own `main`, so libFuzzer's `main` cannot be
// used: Tools/fuzz links libFuzzer without its main (libclang_rt.fuzzer_no_main) and
// wmq-fuzz calls the driver itself. The reference is weak so that the normal build,
// which has no libFuzzer, still links (and `wmq-fuzz run` says it needs Tools/fuzz).
#include "CFuzzerDriver.h"

extern int LLVMFuzzerRunDriver(int *argc, char ***argv,
                               int (*callback)(const uint8_t *data, size_t size)) __attribute__((weak));

int wmq_fuzz_run_driver(int *argc, char ***argv, wmq_fuzz_one_input callback) {
    if (!LLVMFuzzerRunDriver) return -1;
    return LLVMFuzzerRunDriver(argc, argv, callback);
}

int wmq_fuzz_driver_available(void) { return LLVMFuzzerRunDriver != 0; }
