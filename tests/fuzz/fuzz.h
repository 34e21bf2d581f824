/* fuzz.h — shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c) and the replay driver
 * (tests/fuzz/replay.c): each harness defines LLVMFuzzerTestOneInput; built with
 * -DMIXLM_FUZZ=ON and clang it links libFuzzer's main, otherwise replay.c's, which runs every
 * corpus file once (the CTest entries fuzz.replay_<harness>). */
#ifndef MIXLM_FUZZ_H
#define MIXLM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
