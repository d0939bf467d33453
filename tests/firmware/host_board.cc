// A "board" on the host for the serial transport's tests: the firmware harness of firmware_examples/
// (its real command handling and JSON lines), built against the TFLite Micro stub headers with a stand-in
// interpreter whose Invoke() does fixed work. It talks on stdin/stdout, which the test connects to a
// pseudo-terminal. argv[1]: "normal"; "garble" (the first answer to bench arrives corrupted); "silent"
// (answers info, then nothing: a board that stopped).
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "edgesdk_harness.h"

namespace tflite {
namespace {
int8_t input_data[16];
int8_t output_data[4];
TfLiteTensor input_tensor{9, {.int8 = input_data}, nullptr, sizeof(input_data)};
TfLiteTensor output_tensor{9, {.int8 = output_data}, nullptr, sizeof(output_data)};
const Model the_model{};
}  // namespace
uint32_t Model::version() const { return TFLITE_SCHEMA_VERSION; }
const Model* GetModel(const void*) { return &the_model; }
MicroInterpreter::MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t*, size_t) {}
TfLiteStatus MicroInterpreter::AllocateTensors() { return kTfLiteOk; }
TfLiteStatus MicroInterpreter::Invoke() {  // fixed work over the model's bytes
  uint32_t h = edgesdk::kFnvOffset;
  for (int pass = 0; pass < 20; ++pass) h = edgesdk::Fnv1a(g_model, g_model_len, h);
  for (size_t i = 0; i < sizeof(output_data); ++i) output_data[i] = static_cast<int8_t>(h >> (8 * i));
  return kTfLiteOk;
}
TfLiteTensor* MicroInterpreter::input(size_t) { return &input_tensor; }
TfLiteTensor* MicroInterpreter::output(size_t) { return &output_tensor; }
size_t MicroInterpreter::inputs_size() const { return 1; }
size_t MicroInterpreter::outputs_size() const { return 1; }
size_t MicroInterpreter::arena_used_bytes() const { return kTensorArenaHostBytes; }
}  // namespace tflite

namespace {
const char* mode = "normal";
int bench_answers = 0;

uint32_t Micros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_sec * 1000000ull + ts.tv_nsec / 1000);
}

void Write(const char* text, size_t len) {
  static const char kMeasurement[] = "{\"schema\":\"edgesdk.measurement/1\"";
  if (strncmp(text, kMeasurement, sizeof(kMeasurement) - 1) == 0 && strcmp(mode, "garble") == 0 &&
      bench_answers++ == 0) {
    char garbled[64];
    memcpy(garbled, text, 40);
    garbled[17] = '\xff';  // a flipped byte and a line cut short, as after a glitch on the wire
    memcpy(garbled + 40, "\n", 2);
    if (write(1, garbled, 41) < 0) return;
    return;
  }
  if (write(1, text, len) < 0) return;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) mode = argv[1];
  static edgesdk::Harness harness({Micros, Write}, {"host-board", "x86_64", "0001", "tflite-micro", "stub"});
  const char banner[] = "edgesdk harness: loading the model\r\n";
  if (write(1, banner, sizeof(banner) - 1) < 0) return 1;
  harness.Setup();
  char line[64];
  size_t len = 0;
  bool answered_info = false;
  char c;
  while (read(0, &c, 1) == 1) {
    if (c != '\n' && c != '\r') {
      if (len + 1 < sizeof(line)) line[len++] = c;
      continue;
    }
    line[len] = '\0';
    if (len && !(strcmp(mode, "silent") == 0 && answered_info)) {
      harness.Handle(line);
      answered_info = answered_info || strcmp(line, "info") == 0;
    }
    len = 0;
  }
  return 0;
}
