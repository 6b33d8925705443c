#ifndef WMQ_CFUZZERDRIVER_H
#define WMQ_CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

/// One libFuzzer input: return 0 (libFuzzer's convention), crash on a finding.
typedef int (*wmq_fuzz_one_input)(const uint8_t *_Nullable data, size_t size);

/// Runs libFuzzer's driver (LLVMFuzzerRunDriver) on `callback` when the binary was linked
/// with libFuzzer (Tools/fuzz does that), else returns -1 without doing anything.
int wmq_fuzz_run_driver(int *_Nonnull argc, char *_Nullable *_Nullable *_Nonnull argv,
                        wmq_fuzz_one_input _Nonnull callback);

/// Whether the binary was linked with libFuzzer.
int wmq_fuzz_driver_available(void);

#endif
