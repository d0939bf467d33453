// The edgesdk serial protocol on the board side: parse the host's commands and write the answers
// as one JSON line each, in the device agent's schemas (edgesdk.deviceinfo/1, edgesdk.measurement/1).
// Plain C++ with no TFLite Micro and no allocation, so it builds for any board and on the host.
#ifndef EDGESDK_REPORT_H_
#define EDGESDK_REPORT_H_

#include <cstddef>
#include <cstdint>

namespace edgesdk {

constexpr unsigned int kMaxRuns = 200;  // timings kept for percentiles (800 bytes of RAM)

struct Board {
  const char* name;        // e.g. "arduino-nano-33-ble-sense"
  const char* cpu;         // e.g. "cortex-m4f@64MHz"
  const char* id;          // unique per board (chip id); part of the fingerprint
  const char* runtime;     // e.g. "tflite-micro"
  const char* version;     // runtime version string
};

struct Model {
  const char* sha256;      // kModelSha256 from model_data.h
  unsigned int bytes;
  unsigned int arena_bytes;
  unsigned int arena_used_bytes;  // interpreter.arena_used_bytes()
};

struct Timings {
  uint32_t runs_us[kMaxRuns];
  unsigned int runs;
  unsigned int warmup;
  uint32_t init_us;
  uint32_t first_us;
  uint32_t checksum;       // FNV-1a over the output tensors' bytes
  bool capped;             // more runs were asked for than kMaxRuns
};

enum class Command { kNone, kInfo, kBench };

// "info" or "bench RUNS WARMUP" (trailing CR/LF allowed). Anything else is kNone.
Command Parse(const char* line, unsigned int* runs, unsigned int* warmup);

// FNV-1a, continued from ``hash`` (start with kFnvOffset).
constexpr uint32_t kFnvOffset = 2166136261u;
uint32_t Fnv1a(const void* data, size_t bytes, uint32_t hash);

// Write one JSON line (with its "\n") into out; return its length, or 0 if it does not fit.
size_t FormatInfo(char* out, size_t size, const Board& board, const Model& model);
size_t FormatMeasurement(char* out, size_t size, const Board& board, const Model& model, Timings& timings);
size_t FormatError(char* out, size_t size, const char* error, const char* message);

}  // namespace edgesdk

#endif  // EDGESDK_REPORT_H_
